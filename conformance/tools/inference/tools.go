//go:build tools

// Package tools pins the Gateway API Inference Extension's reference endpoint
// picker (lwepp, v1.6.0: what the extension's conformance suite deploys and
// what the picker bridge's end-to-end test talks to) for the conformance
// harness (see ../../scripts/build.sh). This file is never compiled.
package tools

import (
	_ "sigs.k8s.io/gateway-api-inference-extension/cmd/lwepp"
)
