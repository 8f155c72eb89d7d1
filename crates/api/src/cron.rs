//! The CEL rules that refuse a malformed cron expression at admission, with a sentence
//! saying what each field takes.
//!
//! The engine's parser (`patchpilot_engine::window::Cron`) is the reference; these rules
//! accept a subset of what it accepts (tested below), so that an admitted window always
//! reads. What a regular expression cannot say — a reversed range such as `5-2` — is left
//! to the operator, which reports it as `InvalidSpec` naming the field.
//!
//! Cost: each rule runs at most two `matches` over a string of at most 256 characters
//! (`maxLength`), with patterns of at most 380 characters. The API server estimates a
//! `matches` at ceil(0.1 × (1 + 256)) × ceil(0.25 × pattern length): at most 2,704 for one
//! evaluation (the runtime limit is 1 million a call), 86,528 for the 32 recurrences a window
//! may have (the limit is 10 million a rule), about 300,000 for the six rules together (100
//! million a CRD); the message expressions only join strings. A rule whose cost the API
//! server cannot bound is refused when the CRD is created, so `maxLength` on `cron` and
//! `maxItems` on `recurrences` must stay.

use kube::core::{Message, Rule};
use patchpilot_engine::window::CRON_MACROS;

/// Five whitespace-separated fields, which the per-field rules then judge.
const FIVE_FIELDS: &str = r"^\s*\S+\s+\S+\s+\S+\s+\S+\s+\S+\s*$";

/// A step `/n`, `n` from 1 (leading zeros allowed) with at most nine digits.
const STEP: &str = "(/0*[1-9][0-9]{0,8})?";

/// One field of a cron expression.
struct Field {
    /// How the field is named in messages.
    name: &'static str,
    /// Its position, for messages.
    ordinal: &'static str,
    /// A pattern for one value (a number in range, leading zeros allowed, or a name).
    value: &'static str,
    /// The values it takes, for messages.
    values: &'static str,
    /// An example of a list, a range and a step.
    examples: [&'static str; 3],
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        ordinal: "1st",
        value: "0*[1-5]?[0-9]",
        values: "0-59",
        examples: ["0,30", "0-29", "*/15"],
    },
    Field {
        name: "hour",
        ordinal: "2nd",
        value: "0*(1?[0-9]|2[0-3])",
        values: "0-23",
        examples: ["1,22", "1-5", "*/2"],
    },
    Field {
        name: "day-of-month",
        ordinal: "3rd",
        value: "0*([1-9]|[12][0-9]|3[01])",
        values: "1-31",
        examples: ["1,15", "1-7", "*/2"],
    },
    Field {
        name: "month",
        ordinal: "4th",
        value: "0*([1-9]|1[0-2])|(?i:JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)",
        values: "1-12 or JAN-DEC",
        examples: ["1,7", "JAN-MAR", "*/3"],
    },
    Field {
        name: "day-of-week",
        ordinal: "5th",
        value: "0*[0-7]|(?i:SUN|MON|TUE|WED|THU|FRI|SAT)",
        values: "0-7 (0 and 7 are Sunday) or SUN-SAT",
        examples: ["SAT,SUN", "MON-FRI", "*/2"],
    },
];

impl Field {
    /// A pattern for the whole field: a comma-separated list of `*`, `?`, a value or a range,
    /// each with an optional step.
    fn pattern(&self) -> String {
        let value = &self.value;
        let item = format!("([*?]|({value})(-({value}))?){STEP}");
        format!("{item}(,{item})*")
    }

    /// The rule for the field at `index`: it holds when the expression is not five fields
    /// (the shape rule reports that) or when the field matches.
    fn rule(&self, index: usize) -> Rule {
        let before = r"\S+\s+".repeat(index);
        let after = if index == 4 { r"\s*$" } else { r"\s" };
        let field = format!(r"^\s*{before}({}){after}", self.pattern());
        let [list, range, step] = self.examples;
        Rule::new(format!(
            "!self.matches({}) || self.matches({})",
            cel_string(FIVE_FIELDS),
            cel_string(&field)
        ))
        .message(quoting_the_expression(&format!(
            "the {} field (the {}) takes * or {}, and lists ({list}), ranges ({range}) and steps \
             ({step}) of them",
            self.name, self.ordinal, self.values
        )))
    }
}

/// A CEL string literal in single quotes.
fn cel_string(text: &str) -> String {
    format!("'{}'", text.replace('\\', r"\\").replace('\'', r"\'"))
}

/// A message expression: `cron "<the expression>": <sentence>`. Older API servers show a CEL
/// failure with the value's type (`Invalid value: "string"`), so the message quotes it;
/// v1.37 shows the value too.
fn quoting_the_expression(sentence: &str) -> Message {
    Message::Expression(format!(
        "'cron \"' + self + '\": ' + {}",
        cel_string(sentence)
    ))
}

/// Rule `index` of a `cron` field: 0 its shape (five fields or a predefined schedule), 1 to
/// 5 the values of each field.
pub fn rule(index: usize) -> Rule {
    rules().swap_remove(index)
}

/// The rules of a `cron` field: its shape, then each field's values.
fn rules() -> Vec<Rule> {
    let macros: Vec<&str> = CRON_MACROS.iter().map(|(name, _)| *name).collect();
    let shape = format!(
        r"^\s*(({})|\S+\s+\S+\s+\S+\s+\S+\s+\S+)\s*$",
        macros.join("|")
    );
    let (last, rest) = macros.split_last().expect("there are predefined schedules");
    let mut rules = vec![
        Rule::new(format!("self.matches({})", cel_string(&shape))).message(quoting_the_expression(
            &format!(
                "five fields are needed, minute hour day-of-month month day-of-week, like \"0 22 * \
                 * Tue\", or one of {} or {last}; no TZ= prefix: the window's timeZone applies",
                rest.join(", ")
            ),
        )),
    ];
    rules.extend(FIELDS.iter().enumerate().map(|(i, field)| field.rule(i)));
    rules
}

#[cfg(test)]
mod tests {
    use patchpilot_engine::window::Cron;
    use regex::Regex;

    use super::*;

    /// The patterns of the rules, as the API server's regular expressions read them.
    fn shape_and_fields() -> (Regex, Vec<Regex>) {
        let rules = rules();
        let pattern = |rule: &Rule, nth: usize| {
            let text = &rule.rule;
            let literal = text.split("matches('").nth(nth).unwrap();
            let literal = &literal[..literal.find("')").unwrap()];
            Regex::new(&literal.replace(r"\\", r"\")).unwrap()
        };
        let shape = pattern(&rules[0], 1);
        let fields = rules[1..].iter().map(|r| pattern(r, 2)).collect();
        (shape, fields)
    }

    /// Whether every rule holds, as the API server evaluates them.
    fn admitted(expression: &str) -> bool {
        let (shape, fields) = shape_and_fields();
        let five = Regex::new(FIVE_FIELDS).unwrap().is_match(expression);
        shape.is_match(expression) && fields.iter().all(|f| !five || f.is_match(expression))
    }

    /// An admitted expression always parses; one the parser refuses is refused at admission,
    /// except for what a pattern cannot see (a reversed range).
    #[test]
    fn the_rules_admit_what_the_parser_reads() {
        let good = [
            "0 22 * * Tue",
            "*/15 0-5,22,23 1,15 JAN-mar mon-FRI",
            "59 23 31 12 7",
            "0 0 ? * SUN/2",
            "00 07 01 01 0",
            "5/20 20/2 1-31/10 */4 *",
            "0,30 9-10 * * 1-5",
            "*/90 * * * *",
            "@yearly",
            "@annually",
            "@monthly",
            "@weekly",
            "@daily",
            " @midnight ",
            "@hourly",
        ];
        for expression in good {
            assert!(admitted(expression), "{expression:?} refused");
            assert!(expression.parse::<Cron>().is_ok(), "{expression:?}");
        }
        let bad = [
            "60 * * * *",
            "0 24 * * *",
            "0 25 * * Tue",
            "0 0 0 * *",
            "0 0 32 * *",
            "0 0 * 0 *",
            "0 0 * 13 *",
            "0 0 * * 8",
            "*/0 * * * *",
            "1-5/ * * * *",
            "*/x * * * *",
            "0 0 * FOO *",
            "0 0 * * MONDAY",
            "0 0 MON * *",
            "1,,2 * * * *",
            "1, * * * *",
            "-5 * * * *",
            "1-2-3 * * * *",
            "*-5 * * * *",
            "1/2/3 * * * *",
            "99999999999 * * * *",
            "* * * *",
            "0 * * * * *",
            "",
            "@daily 0",
            "@Daily",
            "@reboot",
            "@every 1h",
            "TZ=UTC 0 0 * * *",
        ];
        for expression in bad {
            assert!(expression.parse::<Cron>().is_err(), "{expression:?}");
            assert!(!admitted(expression), "{expression:?} admitted");
        }
        // Left to the operator: a range whose start is after its end.
        assert!(admitted("0 5-2 * * *") && "0 5-2 * * *".parse::<Cron>().is_err());
    }

    #[test]
    fn each_rule_names_its_field() {
        let rules = rules();
        let messages: Vec<String> = rules
            .iter()
            .map(|r| match &r.message {
                Some(Message::Expression(m)) => m.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(messages[0].contains("five fields"), "{}", messages[0]);
        assert!(messages[0].contains("@daily"), "{}", messages[0]);
        assert!(
            messages[0].contains(r"window\'s timeZone"),
            "{}",
            messages[0]
        );
        assert!(
            messages[2].starts_with(
                r#"'cron "' + self + '": ' + 'the hour field (the 2nd) takes * or 0-23"#
            ),
            "{}",
            messages[2]
        );
        let (_, fields) = shape_and_fields();
        let failing: Vec<usize> = fields
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.is_match("0 25 * * Tue"))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(failing, [1]);
    }
}
