// Package jobs holds the short-lived binaries that replace the Python
// runboat's long-running controller: the initializer, the stopper and the
// undeployer, each run by a CronJob.
package jobs
