// Package model is the build model: a build's identity, the keys it carries
// on the cluster, and its status as derived from its Deployment.
package model

import "time"

// Keys of the contract on the cluster. They are the Python runboat's, so a
// namespace it manages can be taken over as it is; the keys this project adds
// are marked as such and are ignored safely when absent.
const (
	// LabelBuild is on every resource of a build; its value is the build name.
	LabelBuild = "runboat/build"
	// LabelJobKind is on init and cleanup Jobs and their pods.
	LabelJobKind = "runboat/job-kind"
	// LabelCommit holds the commit sha (CommitLabel), so that the builds of
	// a commit can be selected by the API server. Added by this project;
	// adopted Python runboat builds get it on first sight.
	LabelCommit = "runboat/commit"
	// LabelTarget identifies what a build is for, a branch or a pull request
	// of a repository (see Ref.TargetKey), so that the builds of a branch or
	// of a pull request can be selected by the API server. Added by this
	// project, like LabelCommit.
	LabelTarget = "runboat/target"
	// LabelRepo identifies the repository of a build (RepoKey), so that the
	// builds of a repository can be selected by the API server. Added by
	// this project, like LabelCommit.
	LabelRepo = "runboat/repo-key"
	// LabelInitStatus is on a build's Deployment: a copy of its
	// AnnotationInitStatus, written in the same patch, so that the builds
	// to initialize and initializing can be selected by the API server.
	// The annotation stays the truth: a job that finds the label missing or
	// different repairs it. Added by this project.
	LabelInitStatus = "runboat/init-status"

	AnnotationRepo         = "runboat/repo"
	AnnotationTargetBranch = "runboat/target-branch"
	AnnotationPR           = "runboat/pr"
	AnnotationCommit       = "runboat/git-commit"
	AnnotationInitStatus   = "runboat/init-status"
	AnnotationLastScaled   = "runboat/last-scaled"

	// AnnotationInitFailure says why a build's initialization failed: the
	// Job's condition reason, the container's termination reason and exit
	// code, or the reason an init pod never started. Added by this project.
	AnnotationInitFailure = "runboat/init-failure"
	// AnnotationCleanupAttempts counts the cleanup Jobs that failed for a
	// build being undeployed. Added by this project.
	AnnotationCleanupAttempts = "runboat/cleanup-attempts"
	// AnnotationCleanupFailure says why the last cleanup Job of a build
	// failed. Added by this project.
	AnnotationCleanupFailure = "runboat/cleanup-failure"
	// AnnotationCleanupRetryAfter is the time (RFC 3339) before which no new
	// cleanup Job is run for the build. Added by this project.
	AnnotationCleanupRetryAfter = "runboat/cleanup-retry-after"
	// AnnotationAttempt is on a cleanup Job: which attempt it is, from 1.
	// Added by this project.
	AnnotationAttempt = "runboat/attempt"

	// AnnotationLastReset is on a build's Deployment: when the build was
	// last reset through the console. Added by this project; absent means
	// never.
	AnnotationLastReset = "runboat/last-reset"

	// InitLogKey is the key, in the init log ConfigMap of a build (see
	// InitLogName), of the end of the log of its failed init Job.
	InitLogKey = "log"
	// InitLogReasonKey is the key of the failure reason in the init log
	// ConfigMap.
	InitLogReasonKey = "reason"

	// Finalizer keeps a build's Deployment until its cleanup has run.
	Finalizer = "runboat/cleanup"

	// FieldManager is the server-side apply field manager of every write.
	FieldManager = "runboat"
)

// InitStatus is the value of the runboat/init-status annotation.
type InitStatus string

const (
	InitTodo      InitStatus = "todo"
	InitStarted   InitStatus = "started"
	InitSucceeded InitStatus = "succeeded"
	InitFailed    InitStatus = "failed"
)

// JobKind is the value of the runboat/job-kind label.
type JobKind string

const (
	JobInitialize JobKind = "initialize"
	JobCleanup    JobKind = "cleanup"
)

// InitLogName is the name of the ConfigMap that keeps the end of the log of
// a build's failed init Job, labelled with the build so that it goes with it.
// Added by this project.
func InitLogName(buildName string) string {
	return buildName + "-init-log"
}

// TimeLayout is the layout of every time annotation of the contract
// (runboat/last-scaled, runboat/last-reset, runboat/cleanup-retry-after):
// RFC 3339, as the Python runboat writes them.
const TimeLayout = time.RFC3339

// FormatTime formats t as the contract's time annotations hold it: RFC 3339,
// in UTC, to the second.
func FormatTime(t time.Time) string {
	return t.UTC().Truncate(time.Second).Format(TimeLayout)
}

// ParseTime parses a time annotation of the contract.
func ParseTime(s string) (time.Time, error) {
	return time.Parse(TimeLayout, s)
}

// maxLabelValue is the length limit of a label value.
const maxLabelValue = 63

// CommitLabel is the value of LabelCommit for a commit: its sha, cut to the
// 63 characters of a label value (a SHA-256 commit has 64 hex digits; the
// 252 bits kept still tell commits apart).
func CommitLabel(commit string) string {
	return commit[:min(len(commit), maxLabelValue)]
}
