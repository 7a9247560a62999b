//go:build tools

// Package tools pins the kube-apiserver command so `go mod tidy` keeps its dependencies in go.mod/go.sum.
// Build with: go build -trimpath -ldflags "-s -w" -o <out> k8s.io/kubernetes/cmd/kube-apiserver
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
