// Command kstatus prints what sigs.k8s.io/cli-utils/pkg/kstatus/status (the library behind
// Flux's health checks and `kubectl wait`-style readiness of GitOps tools) makes of objects:
//
//	kubectl get patchrollout NAME -o json | kstatus
//
// It reads one object, or a List, as JSON or YAML on standard input and prints one JSON line
// per object: {"kind", "name", "status", "message"}, status being InProgress, Failed,
// Current, Terminating, NotFound or Unknown.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

type result struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "kstatus: %v\n", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	data, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	// JSON numbers as int64, as the API machinery reads them (kstatus insists on it).
	data, err = yaml.YAMLToJSON(data)
	if err != nil {
		return fmt.Errorf("not an object: %w", err)
	}
	object := unstructured.Unstructured{}
	if err := object.UnmarshalJSON(data); err != nil {
		return fmt.Errorf("not an object: %w", err)
	}
	objects := []unstructured.Unstructured{object}
	if object.IsList() {
		list, err := object.ToList()
		if err != nil {
			return err
		}
		objects = list.Items
	}
	encoder := json.NewEncoder(out)
	for i := range objects {
		u := &objects[i]
		computed, err := status.Compute(u)
		if err != nil {
			return fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
		}
		if err := encoder.Encode(result{u.GetKind(), u.GetName(), computed.Status.String(), computed.Message}); err != nil {
			return err
		}
	}
	return nil
}
