// Runs the official Gateway API conformance suite (sigs.k8s.io/gateway-api/conformance v1.6.1)
// against Gatehouse, in the cluster of $KUBECONFIG. Normally started by `npm run conformance`
// (conformance/run.ts), which brings up the mini-cluster, the fake kubelet and the controller first.
//
// Every flag of the suite (package sigs.k8s.io/gateway-api/conformance/utils/flags) works as
// upstream: -gateway-class, -run-test, -skip-tests, -supported-features, -exempt-features,
// -all-features, -conformance-profiles, -usable-address, -unusable-address, -report-output,
// -cleanup-base-resources, -debug, -timeout-config-overrides, ... This wrapper only changes
// defaults:
//
//   - -gateway-class defaults to "gatehouse";
//   - the implementation details default to Gatehouse's: version from package.json, url from its
//     homepage/repository and contact from its bugs/author (https://gatehouse.dev otherwise);
//   - -report-output defaults to conformance/out/report.yaml;
//   - supported features come from GatewayClass.status.supportedFeatures unless -supported-features,
//     -all-features or -all-gateway-features (every feature but the mesh ones; added here) is
//     given. Upstream stops inferring as soon as -run-test or -exempt-features is set; here the
//     inferred set minus the exempt features is used then;
//   - -conformance-profiles defaults to every GATEWAY-* profile whose core features are all in the
//     supported set (the report has one entry per profile).
package suite

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/gateway-api/conformance"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"
	"sigs.k8s.io/gateway-api/pkg/features"
)

const (
	defaultGatewayClass = "gatehouse"
	organization        = "gatehouse"
	project             = "gatehouse"
	// Used when package.json has no homepage/repository (url) or bugs/author (contact).
	fallbackURL = "https://gatehouse.dev"
)

var allGatewayFeatures = flag.Bool("all-gateway-features", false,
	"Enable every feature except the mesh ones (-all-features also enables mesh, whose manifests need images the fake kubelet cannot run)")

// The profiles a Gateway implementation can claim, in report order.
var gatewayProfiles = []suite.ConformanceProfile{
	suite.GatewayHTTPConformanceProfile,
	suite.GatewayGRPCConformanceProfile,
	suite.GatewayTLSConformanceProfile,
	suite.GatewayTCPConformanceProfile,
	suite.GatewayUDPConformanceProfile,
}

func TestConformance(t *testing.T) {
	opts := conformance.DefaultOptions(t)
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
		t.Fatalf("package.json: %v (pass -version, -url and -contact)", err)
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
		out, err := filepath.Abs(filepath.Join("..", "out", "report.yaml"))
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

	// Supported features: explicit, all, or what the GatewayClass advertises.
	if *allGatewayFeatures {
		mesh := features.SetsToNamesSet(features.MeshCoreFeatures, features.MeshExtendedFeatures)
		opts.SupportedFeatures = sets.List(features.SetsToNamesSet(features.AllFeatures).Difference(mesh))
	}
	supported := sets.New(opts.SupportedFeatures...)
	if opts.EnableAllSupportedFeatures {
		supported = features.SetsToNamesSet(features.AllFeatures)
	} else if len(opts.SupportedFeatures) == 0 {
		advertised, err := gatewayClassFeatures(t, opts)
		if err != nil {
			t.Fatalf("reading supported features of GatewayClass %q: %v", opts.GatewayClassName, err)
		}
		supported = advertised
		// Upstream infers only when nothing narrows the run; keep inferring when -run-test or
		// -exempt-features is given, so that the report still counts the test(s) that ran.
		if opts.RunTest != "" || len(opts.ExemptFeatures) > 0 {
			opts.SupportedFeatures = sets.List(advertised)
		}
	}
	supported = supported.Difference(sets.New(opts.ExemptFeatures...))

	if !set["conformance-profiles"] {
		opts.ConformanceProfiles = nil
		for _, profile := range gatewayProfiles {
			if supported.IsSuperset(profile.CoreFeatures) {
				opts.ConformanceProfiles = append(opts.ConformanceProfiles, profile.Name)
			}
		}
		if len(opts.ConformanceProfiles) == 0 {
			t.Fatalf("no GATEWAY-* profile has all its core features in the supported set %v; "+
				"pass -conformance-profiles or -supported-features", sets.List(supported))
		}
	}
	t.Logf("Implementation: %s/%s %s", opts.Implementation.Organization, opts.Implementation.Project,
		opts.Implementation.Version)
	t.Logf("Conformance profiles: %v", opts.ConformanceProfiles)
	t.Logf("Report: %s", opts.ReportOutputPath)

	conformance.RunConformanceWithOptions(t, opts)
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
	data, err := os.ReadFile(filepath.Join("..", "..", "package.json"))
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

// gatewayClassFeatures waits (up to the GatewayClass acceptance timeout) until the GatewayClass
// lists supported features in its status, and returns them without mesh features.
func gatewayClassFeatures(t *testing.T, opts suite.ConformanceOptions) (sets.Set[features.FeatureName], error) {
	timeout := opts.TimeoutConfig.GWCMustBeAccepted
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	mesh := features.SetsToNamesSet(features.MeshCoreFeatures, features.MeshExtendedFeatures)
	var lastErr error
	for {
		gwc := &gatewayv1.GatewayClass{}
		err := opts.Client.Get(ctx, types.NamespacedName{Name: opts.GatewayClassName}, gwc)
		if err == nil {
			out := sets.New[features.FeatureName]()
			for _, f := range gwc.Status.SupportedFeatures {
				if name := features.FeatureName(f.Name); !mesh.Has(name) {
					out.Insert(name)
				}
			}
			if out.Len() > 0 {
				t.Logf("GatewayClass %s supports: %v", opts.GatewayClassName, sets.List(out))
				return out, nil
			}
			lastErr = fmt.Errorf("status.supportedFeatures is empty")
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("after %s: %w", timeout, lastErr)
		case <-time.After(time.Second):
		}
	}
}
