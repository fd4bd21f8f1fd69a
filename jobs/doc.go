// Package jobs holds the short-lived binaries that replace the Python
// runboat's long-running controller: the initializer, the stopper, the
// undeployer and the reconciler (cmd/<name>), each run by a CronJob. Their logic is in the
// shared module (runboat.dev/shared/jobs/...), which the webhook function
// uses too; this module adds thin mains, and the end-to-end tests and
// benchmarks of the jobs on the local control plane, acting as the
// ServiceAccount of the manifests.
package jobs
