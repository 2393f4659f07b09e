// Runs the official Gateway API Inference Extension conformance suite
// (sigs.k8s.io/gateway-api-inference-extension/conformance v1.6.0, profile "Gateway", 14 tests)
// against Gatehouse, in the cluster of $KUBECONFIG. Normally started by
// `npm run conformance:inference` (conformance/inference.ts), which brings up the mini-cluster, the
// fake kubelet (which runs the suite's echo-basic and lwepp Pods) and the controller first, and runs
// this package as a test binary built once per content hash.
//
// Every flag of the suite works as upstream (package sigs.k8s.io/gateway-api/conformance/utils/flags:
// -gateway-class, -run-test, -skip-tests, -report-output, -cleanup-base-resources, -debug,
// -timeout-config-overrides, -allow-crds-mismatch, -organization, -project, -url, -version,
// -contact, ...). This wrapper only changes defaults, as conformance/suite does:
//
//   - -gateway-class defaults to "gatehouse";
//   - the implementation details default to Gatehouse's: version from package.json, url from its
//     homepage/repository and contact from its bugs/author (https://gatehouse.dev otherwise);
//   - -report-output defaults to conformance/out/inference-report.yaml.
package inference

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	inference "sigs.k8s.io/gateway-api-inference-extension/conformance"
)

const (
	defaultGatewayClass = "gatehouse"
	organization        = "gatehouse"
	project             = "gatehouse"
	// Used when package.json has no homepage/repository (url) or bugs/author (contact).
	fallbackURL = "https://gatehouse.dev"
)

// repoRoot is the repository root: GATEHOUSE_REPO when set (the test binary runs from a cache
// directory), else two levels up from this package's directory (go test's working directory).
func repoRoot() string {
	if dir := os.Getenv("GATEHOUSE_REPO"); dir != "" {
		return dir
	}
	return filepath.Join("..", "..")
}

func TestConformance(t *testing.T) {
	opts := inference.DefaultOptions(t)
	set := flagsSet()

	if !set["gateway-class"] {
		opts.GatewayClassName = defaultGatewayClass
	}
	if !set["organization"] {
		opts.Implementation.Organization = organization
	}
	if !set["project"] {
		opts.Implementation.Project = project
	}
	pkg, err := readPackageJSON()
	if err != nil {
		t.Fatalf("package.json: %v (pass -version, -url and -contact, or set GATEHOUSE_REPO)", err)
	}
	if !set["url"] {
		opts.Implementation.URL = pkg.url()
	}
	if !set["version"] {
		if pkg.Version == "" {
			t.Fatalf("package.json has no version (pass -version)")
		}
		opts.Implementation.Version = "v" + strings.TrimPrefix(pkg.Version, "v")
	}
	if !set["contact"] {
		opts.Implementation.Contact = []string{pkg.contact()}
	}
	if !set["report-output"] {
		out, err := filepath.Abs(filepath.Join(repoRoot(), "conformance", "out", "inference-report.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		opts.ReportOutputPath = out
	}
	if opts.ReportOutputPath != "" {
		if err := os.MkdirAll(filepath.Dir(opts.ReportOutputPath), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("Implementation: %s/%s %s", opts.Implementation.Organization, opts.Implementation.Project,
		opts.Implementation.Version)
	t.Logf("Conformance profiles: %v", opts.ConformanceProfiles)
	t.Logf("Report: %s", opts.ReportOutputPath)

	inference.RunConformanceWithOptions(t, opts)
}

// flagsSet returns the names of the command-line flags that were given explicitly.
func flagsSet() map[string]bool {
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// packageJSON holds the fields of the repository's package.json the report uses.
type packageJSON struct {
	Version    string          `json:"version"`
	Homepage   string          `json:"homepage"`
	Repository json.RawMessage `json:"repository"`
	Bugs       json.RawMessage `json:"bugs"`
	Author     json.RawMessage `json:"author"`
}

func readPackageJSON() (packageJSON, error) {
	var pkg packageJSON
	data, err := os.ReadFile(filepath.Join(repoRoot(), "package.json"))
	if err != nil {
		return pkg, err
	}
	return pkg, json.Unmarshal(data, &pkg)
}

// stringOrField returns a JSON string, or the given field of a JSON object.
func stringOrField(raw json.RawMessage, field string) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) == nil {
		if v, ok := m[field].(string); ok {
			return v
		}
	}
	return ""
}

func (p packageJSON) url() string {
	if p.Homepage != "" {
		return p.Homepage
	}
	if r := strings.TrimSuffix(strings.TrimPrefix(stringOrField(p.Repository, "url"), "git+"), ".git"); r != "" {
		return r
	}
	return fallbackURL
}

func (p packageJSON) contact() string {
	for _, c := range []string{stringOrField(p.Bugs, "url"), stringOrField(p.Author, "email"), stringOrField(p.Author, "name")} {
		if c != "" {
			return c
		}
	}
	return p.url()
}
