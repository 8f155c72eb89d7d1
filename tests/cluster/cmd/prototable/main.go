// Command prototable prints, as JSON, how the built-in kinds the sandbox serves are written in
// protobuf: for each kind its message, and for each message its fields (number, JSON name,
// whether Go holds it by pointer or omits it when empty, and its type). The sandbox decodes
// the protobuf bodies kubectl sends (`kubectl create namespace`, `create deployment`, …) with
// it: crates/sandbox/src/apiserver/protobuf/fields.json is this program's output, and
// .ci/run checks that it still is.
//
//	cd tests/cluster && . ./env.sh && go run ./cmd/prototable > ../../crates/sandbox/src/apiserver/protobuf/fields.json
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
)

// The built-in kinds the sandbox serves (crates/sandbox/src/resources.rs), and the bodies of
// the subresources kubectl writes to. CustomResourceDefinitions have no generator in kubectl
// and always come as JSON or YAML.
var kinds = []schema.GroupVersionKind{
	{Version: "v1", Kind: "Namespace"},
	{Version: "v1", Kind: "Node"},
	{Version: "v1", Kind: "Pod"},
	{Version: "v1", Kind: "Event"},
	{Version: "v1", Kind: "ConfigMap"},
	{Version: "v1", Kind: "Secret"},
	{Version: "v1", Kind: "ServiceAccount"},
	{Version: "v1", Kind: "Service"},
	{Group: "apps", Version: "v1", Kind: "Deployment"},
	{Group: "apps", Version: "v1", Kind: "ReplicaSet"},
	{Group: "apps", Version: "v1", Kind: "StatefulSet"},
	{Group: "apps", Version: "v1", Kind: "DaemonSet"},
	{Group: "apps", Version: "v1", Kind: "ControllerRevision"},
	{Group: "batch", Version: "v1", Kind: "Job"},
	{Group: "policy", Version: "v1", Kind: "PodDisruptionBudget"},
	{Group: "policy", Version: "v1", Kind: "Eviction"},
	{Group: "coordination.k8s.io", Version: "v1", Kind: "Lease"},
	{Group: "events.k8s.io", Version: "v1", Kind: "Event"},
	{Group: "autoscaling", Version: "v1", Kind: "Scale"},
}

// Messages written as one JSON value, by their Go type.
var scalars = map[string]string{
	"k8s.io/apimachinery/pkg/apis/meta/v1.Time":       "time",
	"k8s.io/apimachinery/pkg/apis/meta/v1.MicroTime":  "microtime",
	"k8s.io/apimachinery/pkg/apis/meta/v1.Duration":   "duration",
	"k8s.io/apimachinery/pkg/apis/meta/v1.FieldsV1":   "json",
	"k8s.io/apimachinery/pkg/api/resource.Quantity":   "quantity",
	"k8s.io/apimachinery/pkg/util/intstr.IntOrString": "intorstring",
	"k8s.io/apimachinery/pkg/runtime.RawExtension":    "json",
}

// A field of a message: [number, JSON name, flags, type], where flags holds `p` (a pointer in
// Go: present whenever sent), `o` (omitted from JSON when empty), `r` (repeated), `m` (a map,
// whose type is `key>value`), and type is a scalar (`string`, `int`, `bool`, `float`,
// `bytes`), one of the values of `scalars`, or a message's name.
type field [4]any

func main() {
	messages := map[string][]field{}
	roots := map[string]string{}
	for _, gvk := range kinds {
		t := typeOf(gvk)
		roots[apiVersion(gvk)+"/"+gvk.Kind] = name(t)
		walk(t, messages)
	}
	// One kind, and one message, a line: a diff names what changed.
	fmt.Println("{\n \"kinds\": {")
	printLines(roots)
	fmt.Println(" },\n \"messages\": {")
	printLines(messages)
	fmt.Println(" }\n}")
}

// Prints the entries of m, sorted by key, one a line.
func printLines[V any](m map[string]V) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		key, _ := json.Marshal(k)
		value, err := json.Marshal(m[k])
		if err != nil {
			panic(err)
		}
		comma := ","
		if i == len(keys)-1 {
			comma = ""
		}
		fmt.Printf("  %s: %s%s\n", key, value, comma)
	}
}

func apiVersion(gvk schema.GroupVersionKind) string {
	if gvk.Group == "" {
		return gvk.Version
	}
	return gvk.Group + "/" + gvk.Version
}

func typeOf(gvk schema.GroupVersionKind) reflect.Type {
	if t, ok := scheme.Scheme.AllKnownTypes()[gvk]; ok {
		return t
	}
	fmt.Fprintf(os.Stderr, "prototable: no Go type for %v\n", gvk)
	os.Exit(1)
	return nil
}

// A message's name: its Go package below k8s.io, and its type.
func name(t reflect.Type) string {
	path := strings.TrimPrefix(t.PkgPath(), "k8s.io/")
	path = strings.TrimPrefix(path, "api/")
	path = strings.TrimPrefix(path, "apimachinery/pkg/apis/")
	path = strings.TrimPrefix(path, "apiextensions-apiserver/pkg/apis/")
	return path + "." + t.Name()
}

// Adds the message of the struct t, and those it holds, to messages.
func walk(t reflect.Type, messages map[string][]field) {
	key := name(t)
	if _, done := messages[key]; done {
		return
	}
	fields := []field{}
	messages[key] = fields
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("protobuf")
		if !ok {
			continue
		}
		number, _ := strconv.Atoi(strings.Split(tag, ",")[1])
		jsonTag := strings.Split(f.Tag.Get("json"), ",")
		flags := ""
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			flags += "p"
			ft = ft.Elem()
		}
		if strings.Contains(f.Tag.Get("json"), ",omitempty") {
			flags += "o"
		}
		var kind string
		switch {
		case ft.Kind() == reflect.Map:
			flags += "m"
			kind = typeName(ft.Key(), messages) + ">" + typeName(ft.Elem(), messages)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() != reflect.Uint8:
			flags += "r"
			kind = typeName(ft.Elem(), messages)
		default:
			kind = typeName(ft, messages)
		}
		fields = append(fields, field{number, jsonTag[0], flags, kind})
	}
	sort.Slice(fields, func(i, j int) bool { return fields[i][0].(int) < fields[j][0].(int) })
	messages[key] = fields
}

// The type of a value in the table, walking into the messages it names.
func typeName(t reflect.Type, messages map[string][]field) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if s, ok := scalars[t.PkgPath()+"."+t.Name()]; ok {
		return s
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint32, reflect.Uint64:
		return "int"
	case reflect.Float32, reflect.Float64:
		return "float"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "bytes"
		}
	case reflect.Struct:
		walk(t, messages)
		return name(t)
	}
	fmt.Fprintf(os.Stderr, "prototable: no table type for %v\n", t)
	os.Exit(1)
	return ""
}
