//go:build tools

// Package tools pins the Gateway API conformance backend image binary
// (echo-basic, as used by the v1.6.1 conformance suite) for the conformance
// harness (see ../../scripts/build.sh). This file is never compiled.
package tools

import (
	_ "sigs.k8s.io/gateway-api/conformance/echo-basic"
)
