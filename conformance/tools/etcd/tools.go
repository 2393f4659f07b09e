//go:build tools

// Package tools pins etcd for the conformance harness (see ../../scripts/build.sh).
// go.etcd.io/etcd/server/v3 has a `package main` at its root (the same wrapper
// around etcdmain.Main that the upstream etcd binary is built from), so it is
// built directly; this file is never compiled.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
