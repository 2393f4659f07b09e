//go:build tools

// Package tools pins Helm (the helm command of helm.sh/helm/v4) for the chart's lint and golden
// tests (see ../../helm.sh). This file is never compiled.
package tools

import (
	_ "helm.sh/helm/v4/cmd/helm"
)
