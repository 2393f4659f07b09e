//go:build tools

// Package tools pins CoreDNS for the conformance harness (see
// ../../scripts/build.sh); the suite runs a coredns pod in its infra
// namespace. This file is never compiled.
package tools

import (
	_ "github.com/coredns/coredns"
)
