//go:build tools

// Package tools pins the Kubernetes control-plane binaries that the conformance
// harness builds (see ../../scripts/build.sh). It is never compiled; it only
// makes `go mod tidy` record these main packages and their dependencies.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
