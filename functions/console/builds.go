package console

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"runboat.dev/shared/kube"
	"runboat.dev/shared/model"
	"runboat.dev/shared/quota"
)

// errNoBuild is returned when a build has no Deployment.
var errNoBuild = fmt.Errorf("no such build: %w", ErrNotFound)

// buildInfo is a build as the console shows it.
type buildInfo struct {
	model.Build
	// Reason says why the initialization failed, when the cluster keeps it.
	Reason string
	// LastReset is when the build was last reset through the console.
	LastReset time.Time
}

// buildOf reads a build from its Deployment.
func buildOf(d *appsv1.Deployment) (buildInfo, error) {
	b, err := model.FromDeployment(d)
	if err != nil {
		return buildInfo{}, err
	}
	info := buildInfo{Build: b, Reason: failureReason(d)}
	if t, err := model.ParseTime(d.Annotations[model.AnnotationLastReset]); err == nil {
		info.LastReset = t
	}
	return info, nil
}

// listDeployments lists the Deployments of every build.
func (h *Handler) listDeployments(ctx context.Context) ([]appsv1.Deployment, error) {
	return listBuildDeployments(ctx, h, func(d *appsv1.Deployment) (appsv1.Deployment, bool) { return *d, true })
}

// listBuildDeployments lists the Deployments of every build, page by page,
// and returns what keep retains of each.
func listBuildDeployments[O any](ctx context.Context, h *Handler, keep func(*appsv1.Deployment) (O, bool)) ([]O, error) {
	out, _, err := listBuildDeploymentsAt(ctx, h, model.LabelBuild, keep)
	return out, err
}

// listBuildDeploymentsAt lists the build Deployments that selector selects
// (among those labelled runboat/build), with the resourceVersion of the
// list, from which a watch sees every later change.
func listBuildDeploymentsAt[O any](ctx context.Context, h *Handler, selector string, keep func(*appsv1.Deployment) (O, bool)) ([]O, string, error) {
	out, rv, err := kube.List(ctx, h.opts.Client.AppsV1().Deployments(h.opts.Namespace).List,
		metav1.ListOptions{LabelSelector: selector}, keep)
	if err != nil {
		return nil, "", fmt.Errorf("failed to list builds: %w", err)
	}
	return out, rv, nil
}

// listBuilds lists every build the cluster holds. A Deployment that cannot
// be read as a build (a broken annotation) is logged and left out.
func (h *Handler) listBuilds(ctx context.Context) ([]buildInfo, error) {
	return h.listBuildsOf(ctx, "")
}

// listBuildsOf lists the builds of a repository (lower case), or every
// build when repo is empty.
func (h *Handler) listBuildsOf(ctx context.Context, repo string) ([]buildInfo, error) {
	bs, _, err := h.listBuildsAt(ctx, repo)
	return bs, err
}

// listBuildsAt is listBuildsOf, with the resourceVersion of the list. The
// builds of a repository are selected by the API server, by their label
// runboat/repo-key, with those that have no such label yet (made by the
// Python runboat or an earlier version, until a job adopts them), both
// lists at once; the resourceVersion is the first's.
func (h *Handler) listBuildsAt(ctx context.Context, repo string) ([]buildInfo, string, error) {
	keep := func(d *appsv1.Deployment) (buildInfo, bool) {
		if repo != "" && !strings.EqualFold(d.Annotations[model.AnnotationRepo], repo) {
			return buildInfo{}, false // not read in full: a label collision, or a build without the label
		}
		return readableBuild(ctx, d)
	}
	if repo == "" {
		return listBuildDeploymentsAt(ctx, h, model.LabelBuild, keep)
	}
	var labelled, unlabelled []buildInfo
	var rv string
	var g errgroup.Group
	g.Go(func() (err error) {
		sel := model.LabelBuild + "," + model.LabelRepo + "=" + model.RepoKey(repo)
		labelled, rv, err = listBuildDeploymentsAt(ctx, h, sel, keep)
		return err
	})
	g.Go(func() (err error) {
		unlabelled, _, err = listBuildDeploymentsAt(ctx, h, model.LabelBuild+",!"+model.LabelRepo, keep)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, "", err
	}
	return append(labelled, unlabelled...), rv, nil
}

// readableBuild reads a build from its Deployment; one that cannot be read
// as a build (a broken annotation) is logged and not ok.
func readableBuild(ctx context.Context, d *appsv1.Deployment) (buildInfo, bool) {
	b, err := buildOf(d)
	if err != nil {
		logFrom(ctx).Warn().Err(err).Str("deployment", d.Name).Msg("deployment left out: not a readable build")
		return buildInfo{}, false
	}
	return b, true
}

// getDeployment returns the Deployment of a build, selected by its
// runboat/build label (the Deployments of the Python runboat's builds are
// not named after the build). errNoBuild when there is none.
func (h *Handler) getDeployment(ctx context.Context, name string) (*appsv1.Deployment, error) {
	sel, err := labels.ValidatedSelectorFromSet(labels.Set{model.LabelBuild: name})
	if err != nil {
		return nil, errNoBuild // not a label value: no build can have this name
	}
	list, err := h.opts.Client.AppsV1().Deployments(h.opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("failed to read build %s: %w", name, err)
	}
	switch len(list.Items) {
	case 0:
		return nil, errNoBuild
	case 1:
		return &list.Items[0], nil
	}
	logFrom(ctx).Warn().Str("build", name).Int("deployments", len(list.Items)).Msg("several Deployments carry the same build label")
	// The oldest one not being deleted is the build; the others are
	// leftovers.
	items := list.Items
	slices.SortFunc(items, func(a, b appsv1.Deployment) int {
		if (a.DeletionTimestamp == nil) != (b.DeletionTimestamp == nil) {
			if a.DeletionTimestamp == nil {
				return -1
			}
			return 1
		}
		return a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
	})
	return &items[0], nil
}

// getBuild returns a build by name; errNoBuild when there is none.
func (h *Handler) getBuild(ctx context.Context, name string) (buildInfo, error) {
	d, err := h.getDeployment(ctx, name)
	if err != nil {
		return buildInfo{}, err
	}
	b, err := buildOf(d)
	if err != nil {
		return buildInfo{}, fmt.Errorf("failed to read build %s: %w", name, err)
	}
	return b, nil
}

// filter selects builds, as the Python runboat's search: repo (case
// insensitive), target branch, branch (the branch builds of a branch), pull
// request and status. Zero values select everything.
type filter struct {
	repo, targetBranch, branch string
	pr                         int
	status                     model.Status
}

// badRequestError is a problem with the request, told to the client.
type badRequestError struct{ reason string }

func (e *badRequestError) Error() string { return e.reason }

func badRequest(format string, args ...any) error {
	return &badRequestError{reason: fmt.Sprintf(format, args...)}
}

// statuses are the valid build statuses, for the status filter.
var statuses = []model.Status{
	model.StatusUndeploying, model.StatusInitializing, model.StatusFailed,
	model.StatusStopped, model.StatusStopping, model.StatusStarting, model.StatusStarted,
}

// parseFilter reads a filter from query parameters; an empty parameter is
// no filter, as in the Python runboat. withStatus allows the status filter.
func parseFilter(q url.Values, withStatus bool) (filter, error) {
	var f filter
	var errs []error
	if repo := q.Get("repo"); repo != "" {
		f.repo = strings.ToLower(repo)
		if err := model.ValidateRepo(f.repo); err != nil {
			errs = append(errs, badRequest("invalid repo %q: want owner/name", repo))
		}
	}
	for _, p := range []struct {
		key string
		dst *string
	}{{"target_branch", &f.targetBranch}, {"branch", &f.branch}} {
		v := q.Get(p.key)
		if v == "" {
			continue
		}
		if err := model.ValidateBranch(v); err != nil {
			errs = append(errs, badRequest("invalid %s: want a branch name of at most 1024 bytes of UTF-8", p.key))
		}
		*p.dst = v
	}
	if s := q.Get("pr"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			errs = append(errs, badRequest("invalid pr %q: want a pull request number", s))
		}
		f.pr = n
	}
	if s := q.Get("status"); s != "" {
		switch {
		case !withStatus:
			errs = append(errs, badRequest("status is not a filter of this endpoint"))
		case !slices.Contains(statuses, model.Status(s)):
			names := make([]string, len(statuses))
			for i, st := range statuses {
				names[i] = string(st)
			}
			errs = append(errs, badRequest("invalid status %q: want one of %s", s, strings.Join(names, ", ")))
		}
		f.status = model.Status(s)
	}
	if len(errs) > 0 {
		reasons := make([]string, len(errs))
		for i, e := range errs {
			reasons[i] = e.Error()
		}
		return filter{}, badRequest("%s", strings.Join(reasons, "; "))
	}
	return f, nil
}

// empty tells whether the filter selects everything.
func (f filter) empty() bool { return f == filter{} }

// query is the filter's target_branch, branch and pr as query parameters.
func (f filter) query() url.Values {
	q := url.Values{}
	if f.targetBranch != "" {
		q.Set("target_branch", f.targetBranch)
	}
	if f.branch != "" {
		q.Set("branch", f.branch)
	}
	if f.pr != 0 {
		q.Set("pr", strconv.Itoa(f.pr))
	}
	return q
}

// text says in words what the filter's target_branch, branch and pr keep.
func (f filter) text() string {
	var parts []string
	if f.branch != "" {
		parts = append(parts, "builds of branch "+f.branch)
	}
	if f.targetBranch != "" {
		parts = append(parts, "builds for target branch "+f.targetBranch)
	}
	if f.pr != 0 {
		parts = append(parts, "builds of PR #"+strconv.Itoa(f.pr))
	}
	return strings.Join(parts, ", ")
}

// match tells whether a build passes the filter.
func (f filter) match(b model.Build) bool {
	switch {
	case f.repo != "" && b.Ref.Repo != f.repo,
		f.targetBranch != "" && b.Ref.TargetBranch != f.targetBranch,
		f.branch != "" && (b.Ref.TargetBranch != f.branch || b.Ref.PR != 0),
		f.pr != 0 && b.Ref.PR != f.pr,
		f.status != "" && b.Status != f.status:
		return false
	}
	return true
}

// branchPR is the sort key of the branch builds among pull requests: the
// Python runboat sorts a missing PR number as 999999.
const branchPR = 999999

// sortBuilds sorts builds as the Python runboat does: repository, pull
// request (branch builds as number 999999), target branch, creation time,
// each in descending order; then by name, for a stable order.
func sortBuilds(bs []buildInfo) {
	prKey := func(b buildInfo) int {
		if b.Ref.PR == 0 {
			return branchPR
		}
		return b.Ref.PR
	}
	slices.SortStableFunc(bs, func(a, b buildInfo) int {
		return cmp.Or(
			strings.Compare(b.Ref.Repo, a.Ref.Repo),
			cmp.Compare(prKey(b), prKey(a)),
			strings.Compare(b.Ref.TargetBranch, a.Ref.TargetBranch),
			b.Created.Compare(a.Created),
			strings.Compare(a.Name, b.Name),
		)
	})
}

// searchBuilds lists the builds passing f, sorted.
func (h *Handler) searchBuilds(ctx context.Context, f filter) ([]buildInfo, error) {
	all, err := h.listBuildsOf(ctx, f.repo)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, b := range all {
		if f.match(b.Build) {
			out = append(out, b)
		}
	}
	sortBuilds(out)
	return out, nil
}

// counts are the numbers of /api/v1/status. deployed, started and
// initializing are the counts of the quotas, as the jobs count them
// (quota.Count); failed, stopped and undeploying count the builds of these
// statuses, to_initialize those whose init-status is todo.
type counts struct {
	Deployed        int `json:"deployed"`
	MaxDeployed     int `json:"max_deployed"`
	Failed          int `json:"failed"`
	Stopped         int `json:"stopped"`
	Started         int `json:"started"`
	MaxStarted      int `json:"max_started"`
	ToInitialize    int `json:"to_initialize"`
	Initializing    int `json:"initializing"`
	MaxInitializing int `json:"max_initializing"`
	Undeploying     int `json:"undeploying"`
}

// countBuilds counts builds, as read from their Deployments (one that is
// not a readable build counts for nothing, as in the jobs). It reads the
// init Jobs that quota.Count needs: those of the builds being undeployed
// whose init-status is started, which hold a slot while their Job runs.
func (h *Handler) countBuilds(ctx context.Context, bs []buildInfo) (counts, error) {
	c := counts{
		MaxDeployed:     h.opts.Quotas.MaxDeployed,
		MaxStarted:      h.opts.Quotas.MaxStarted,
		MaxInitializing: h.opts.Quotas.MaxInitializing,
	}
	var needed []string
	for _, b := range bs {
		switch b.Status {
		case model.StatusUndeploying:
			c.Undeploying++
		case model.StatusFailed:
			c.Failed++
		case model.StatusStopped:
			c.Stopped++
		}
		if b.InitStatus == model.InitTodo {
			c.ToInitialize++
		}
		if quota.NeedsInitJobs(b.Build) {
			needed = append(needed, b.Name)
		}
	}
	initJobs, err := h.initJobsOf(ctx, needed)
	if err != nil {
		return counts{}, err
	}
	q := quota.Count(func(yield func(model.Build) bool) {
		for _, b := range bs {
			if !yield(b.Build) {
				return
			}
		}
	}, initJobs)
	c.Deployed, c.Started, c.Initializing = q.Deployed, q.Started, q.Initializing
	return c, nil
}

// initJobsBatch bounds the builds whose init Jobs one list selects.
const initJobsBatch = 100

// initJobsOf reads the init Jobs of the builds named, by build: a build
// with none has an empty entry.
func (h *Handler) initJobsOf(ctx context.Context, names []string) (map[string][]batchv1.Job, error) {
	out := make(map[string][]batchv1.Job, len(names))
	for batch := range slices.Chunk(names, initJobsBatch) {
		byBuild, err := labels.NewRequirement(model.LabelBuild, selection.In, batch)
		if err != nil {
			return nil, fmt.Errorf("failed to select the init Jobs of builds: %w", err)
		}
		byKind, err := labels.NewRequirement(model.LabelJobKind, selection.Equals, []string{string(model.JobInitialize)})
		if err != nil {
			return nil, fmt.Errorf("failed to select the init Jobs of builds: %w", err)
		}
		list, err := h.opts.Client.BatchV1().Jobs(h.opts.Namespace).List(ctx, metav1.ListOptions{
			LabelSelector: labels.NewSelector().Add(*byBuild, *byKind).String(),
		})
		if err != nil {
			return nil, fmt.Errorf("failed to list the init Jobs of builds: %w", err)
		}
		for _, name := range batch {
			out[name] = nil
		}
		for _, j := range list.Items {
			name := j.Labels[model.LabelBuild]
			out[name] = append(out[name], j)
		}
	}
	return out, nil
}

// repoCount is a repository and the number of its builds.
type repoCount struct {
	Name    string
	Builds  int
	Started int
	Failed  int
}

// reposOf returns the repositories of builds, sorted by name.
func reposOf(bs []buildInfo) []repoCount {
	byName := map[string]*repoCount{}
	for _, b := range bs {
		r := byName[b.Ref.Repo]
		if r == nil {
			r = &repoCount{Name: b.Ref.Repo}
			byName[b.Ref.Repo] = r
		}
		r.Builds++
		switch b.Status {
		case model.StatusStarted:
			r.Started++
		case model.StatusFailed:
			r.Failed++
		}
	}
	out := make([]repoCount, 0, len(byName))
	for _, r := range byName {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b repoCount) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// errIsNotFound tells whether err means that a build does not exist.
func errIsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
