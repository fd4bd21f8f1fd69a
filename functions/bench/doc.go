// Package bench holds the function's figures of `make bench`, measured on
// the local cluster against baselines of the same run: a new-build
// delivery against a bare Deployment create, with 10,000 builds there; the
// function in HTTP mode (the real binary, in its own process) under 16
// concurrent clients, a burst of one commit and its peak memory; the
// initializer pass it runs after a new build at 100 and 10,000 builds; the
// console's views of a repository against a bare List of its Deployments,
// and its status against a metadata-only List. Only its tests hold code.
package bench
