//! The query parameters of lists and watches, read and checked as the API server does: the
//! numbers parsed as Go parses them (and refused with Go's words), `ListOptions` validated
//! with its rules, resource versions and continue tokens refused with its answers.

use base64::Engine as _;
use serde_json::{Value, json};

use super::{Request, decode};
use crate::status::ApiError;

/// The options of a list or watch.
#[derive(Debug, Default)]
pub struct ListOptions {
    /// `limit`; 0 (or a negative one) for all.
    pub limit: usize,
    /// `timeoutSeconds`, if given.
    pub timeout: Option<i64>,
    /// `resourceVersion`, if given and not empty.
    pub resource_version: Option<u64>,
}

/// Reads the options of a list (`watch` false) or a watch, in the API server's order: the
/// numbers (`limit`, `timeoutSeconds`), then `selectors` (the query's label and field
/// selectors, parsed), then `ListOptions`' rules, then `fields` (the field selector's fields
/// checked against the kind), then the resource version. `watch_list` says whether the
/// server serves streaming lists.
pub fn list_options<S, F>(
    request: &Request,
    watch: bool,
    watch_list: bool,
    selectors: impl FnOnce() -> Result<S, ApiError>,
    fields: impl FnOnce(S) -> Result<F, ApiError>,
) -> Result<(ListOptions, F), ApiError> {
    let params = &request.params;
    let int = |name: &str| -> Result<Option<i64>, ApiError> {
        match params.get(name).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(text) => parse_int(text).map(Some).map_err(ApiError::bad_request),
        }
    };
    let limit = int("limit")?.unwrap_or(0);
    let timeout = int("timeoutSeconds")?;
    let selected = selectors()?;
    let errors = if watch {
        watch_errors(request, watch_list)
    } else {
        list_errors(request)
    };
    if !errors.is_empty() {
        return Err(invalid(&errors));
    }
    let selected = fields(selected)?;
    let resource_version = match params.get("resourceVersion").filter(|v| !v.is_empty()) {
        None => None,
        Some(text) => Some(parse_uint(text).map_err(|e| {
            let message = format!("resourceVersion: Invalid value: \"{text}\": {e}");
            if watch {
                // The watch cache's error, which reaches the client untyped.
                ApiError {
                    code: 500,
                    reason: "",
                    message,
                    details: None,
                }
            } else {
                ApiError::bad_request(format!("invalid resource version: {message}"))
            }
        })?),
    };
    let options = ListOptions {
        limit: usize::try_from(limit).unwrap_or(0),
        timeout,
        resource_version,
    };
    Ok((options, selected))
}

/// A field error of `ListOptions`: the field, the cause's reason and its message.
type FieldError = (&'static str, &'static str, String);

fn forbidden(field: &'static str, message: &str) -> FieldError {
    (
        field,
        "FieldValueForbidden",
        format!("Forbidden: {message}"),
    )
}

fn not_supported(field: &'static str, value: &str, supported: &[&str]) -> FieldError {
    let supported: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
    (
        field,
        "FieldValueNotSupported",
        format!(
            "Unsupported value: \"{value}\": supported values: {}",
            supported.join(", ")
        ),
    )
}

fn list_errors(request: &Request) -> Vec<FieldError> {
    let params = &request.params;
    let matching = params.get("resourceVersionMatch").unwrap_or("");
    let rv = params.get("resourceVersion").unwrap_or("");
    let mut errors = Vec::new();
    if !matches!(matching, "Exact" | "NotOlderThan" | "") {
        errors.push(not_supported(
            "resourceVersionMatch",
            matching,
            &["Exact", "NotOlderThan", ""],
        ));
    }
    if !matching.is_empty() {
        if rv.is_empty() {
            errors.push(forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        if !params.get("continue").unwrap_or("").is_empty() {
            errors.push(forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
        if matching == "Exact" && rv == "0" {
            errors.push(forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
    }
    if params.get("sendInitialEvents").is_some() {
        errors.push(forbidden(
            "sendInitialEvents",
            "sendInitialEvents is forbidden for list",
        ));
    }
    errors
}

fn watch_errors(request: &Request, watch_list: bool) -> Vec<FieldError> {
    let params = &request.params;
    let matching = params.get("resourceVersionMatch").unwrap_or("");
    let initial_events = params.get("sendInitialEvents").is_some();
    let mut errors = Vec::new();
    if initial_events {
        if matching != "NotOlderThan" {
            errors.push(forbidden(
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if !watch_list {
            errors.push(forbidden(
                "sendInitialEvents",
                "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",
            ));
        }
    }
    if !matching.is_empty() {
        if !initial_events {
            errors.push(forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            ));
        }
        if matching != "NotOlderThan" {
            errors.push(not_supported(
                "resourceVersionMatch",
                matching,
                &["NotOlderThan"],
            ));
        }
    }
    if !params.get("continue").unwrap_or("").is_empty() {
        errors.push(forbidden(
            "resourceVersionMatch",
            "resourceVersionMatch is forbidden when continue is provided",
        ));
    }
    errors
}

/// `422 Invalid` for `ListOptions`, as its validation answers.
fn invalid(errors: &[FieldError]) -> ApiError {
    let causes: Vec<Value> = errors
        .iter()
        .map(|(field, reason, message)| json!({"reason": reason, "message": message, "field": field}))
        .collect();
    let texts: Vec<String> = errors
        .iter()
        .map(|(field, _, message)| format!("{field}: {message}"))
        .collect();
    let summary = match texts.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    ApiError {
        code: 422,
        reason: "Invalid",
        message: format!("ListOptions.meta.k8s.io \"\" is invalid: {summary}"),
        details: Some(json!({"group": "meta.k8s.io", "kind": "ListOptions", "causes": causes})),
    }
}

/// `504` for a resource version the server has not reached, as the watch cache answers
/// once it gave up waiting for it.
pub fn too_large(rv: u64, current: u64) -> ApiError {
    ApiError {
        code: 504,
        reason: "Timeout",
        message: format!("Timeout: Too large resource version: {rv}, current: {current}"),
        details: Some(json!({
            "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
            "retryAfterSeconds": 1,
        })),
    }
}

/// Checks a continue token's envelope as the API server decodes it (base64 of a JSON
/// object of version `meta.k8s.io/v1`), with its messages; the store reads the rest.
pub fn check_continue(token: &str) -> Result<(), ApiError> {
    let refuse = |why: String| {
        ApiError::bad_request(format!(
            "invalid continue token: continue key is not valid: {why}"
        ))
    };
    // Go's RawURLEncoding: no padding, and bits past the last byte are not checked.
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_encode_padding(false)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone)
            .with_decode_allow_trailing_bits(true),
    );
    let bytes = engine.decode(token).map_err(|e| {
        let at = match e {
            base64::DecodeError::InvalidByte(at, _) => at,
            base64::DecodeError::InvalidLastSymbol(at, _) => at,
            _ => token.len(),
        };
        refuse(format!("illegal base64 data at input byte {at}"))
    })?;
    let value = decode::json(&bytes).map_err(refuse)?;
    let version = value["v"].as_str().unwrap_or("");
    if version != "meta.k8s.io/v1" {
        return Err(refuse(format!(
            "server does not recognize this encoded version \"{version}\""
        )));
    }
    Ok(())
}

/// An `int64` as Go's `strconv.ParseInt` reads it, or its error.
fn parse_int(text: &str) -> Result<i64, String> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.ParseInt: parsing \"{text}\": invalid syntax"
        ));
    }
    text.parse()
        .map_err(|_| format!("strconv.ParseInt: parsing \"{text}\": value out of range"))
}

/// A `uint64` as Go's `strconv.ParseUint` reads it, or its error.
fn parse_uint(text: &str) -> Result<u64, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.ParseUint: parsing \"{text}\": invalid syntax"
        ));
    }
    text.parse()
        .map_err(|_| format!("strconv.ParseUint: parsing \"{text}\": value out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_as_go_reads_them() {
        assert_eq!(parse_int("-1"), Ok(-1));
        assert_eq!(parse_int("+7"), Ok(7));
        assert_eq!(
            parse_int("abc").unwrap_err(),
            "strconv.ParseInt: parsing \"abc\": invalid syntax"
        );
        assert_eq!(
            parse_int("99999999999999999999").unwrap_err(),
            "strconv.ParseInt: parsing \"99999999999999999999\": value out of range"
        );
        assert_eq!(
            parse_uint("-5").unwrap_err(),
            "strconv.ParseUint: parsing \"-5\": invalid syntax"
        );
        assert_eq!(
            parse_uint("+5").unwrap_err(),
            "strconv.ParseUint: parsing \"+5\": invalid syntax"
        );
        assert_eq!(parse_uint("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn continue_tokens_that_are_not_base64_json_are_refused_with_go_s_words() {
        let error = check_continue("garbage").unwrap_err();
        assert_eq!(
            error.message,
            "invalid continue token: continue key is not valid: invalid character '\\u0081' looking for beginning of value"
        );
        assert_eq!(error.code, 400);
    }
}
