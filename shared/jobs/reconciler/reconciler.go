// Package reconciler is the reconciler job: it compares GitHub (the open
// pull requests and the branches of the repositories of the builds, and of
// RUNBOAT_RECONCILE_REPOS) with the builds, undeploys what GitHub says is
// gone and deploys the heads that lost their webhook. Its reads of GitHub
// are conditional requests (the ETags kept in the ConfigMap
// runboat-reconciler-cache), so that a quiet pass costs nothing of the rate
// limit.
package reconciler

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"runboat.dev/shared/deploy"
	"runboat.dev/shared/github"
	"runboat.dev/shared/jobs/runner"
	"runboat.dev/shared/logging"
)

// Name is the job's name.
const Name = "reconciler"

// CacheConfigMap is the ConfigMap holding the ETags of the last run's
// answers and what was read from them; cacheKey is its key (gzipped JSON).
const (
	CacheConfigMap = "runboat-reconciler-cache"
	cacheKey       = "pages.json.gz"
)

// Job is the reconciler. Its zero value reads GitHub with the access the
// configuration gives (github.Access).
type Job struct {
	// Transport, if set, makes the requests to GitHub (tests).
	Transport http.RoundTripper
}

var _ runner.Job = Job{}

// Name implements runner.Job.
func (Job) Name() string { return Name }

// Plan implements runner.Job: it reads the cache of the conditional
// requests, then GitHub, one repository after another (stopping at the
// first rate limit or at the request budget), and plans. Its last action
// saves the cache.
func (j Job) Plan(ctx context.Context, env *runner.Env, builds *runner.Builds) (runner.Plan, error) {
	log := logging.From(ctx)
	access, err := github.NewAccess(env.Config.GitHub, j.Transport)
	if err != nil {
		return runner.Plan{}, err
	}
	client, err := access.Client()
	if err != nil {
		return runner.Plan{}, fmt.Errorf("failed to create the GitHub client: %w", err)
	}
	cm, cache, err := loadCache(ctx, env)
	if err != nil {
		return runner.Plan{}, err
	}
	s := Settings{Builds: env.Config.Builds, Quotas: env.Config.Quotas, Reconciler: env.Config.Reconciler}
	repos := Repos(builds.All, s)
	reader := github.NewReader(client, cache, env.Config.Reconciler.MaxRequests)
	read := readAll(ctx, reader, repos)
	log.Info().Int("repos", len(repos)).Int("read", len(read.Repos)).Int("unread", len(read.Unread)).
		Int("github_requests", reader.Requests).Int("not_modified", reader.NotModified).Msg("GitHub read")

	out := &outcome{}
	deployer := deploy.New(env.Config.Builds, env.Clients, env.Clock)
	actions := Plan(builds.All, read, s)
	for _, a := range actions {
		switch a := a.(type) {
		case *undeploy:
			a.out = out
		case *deployHead:
			a.out, a.deployer = out, deployer
		}
	}
	var keep []string
	for _, r := range repos {
		if _, ok := read.Repos[r]; !ok {
			keep = append(keep, r)
		}
	}
	save, err := newSaveCache(cm, reader.Cache(keep), out)
	if err != nil {
		return runner.Plan{}, err
	}
	if save != nil {
		actions = append(actions, save)
	}
	return runner.Plan{Actions: actions}, nil
}

// readAll reads repos; a rate limit or the budget stops the reads, the
// repositories left are unread.
func readAll(ctx context.Context, reader *github.Reader, repos []string) Read {
	read := Read{Repos: map[string]github.Repository{}, Previous: map[string]github.Repository{}, Unread: map[string]error{}}
	var stop error
	for _, repo := range repos {
		if prev, ok := reader.Previous(repo); ok {
			read.Previous[repo] = prev
		}
		if stop != nil {
			read.Unread[repo] = fmt.Errorf("%s not read: %w", repo, stop)
			continue
		}
		r, err := reader.Read(ctx, repo)
		if err != nil {
			read.Unread[repo] = err
			if github.Stopping(err) {
				stop = err
			}
			continue
		}
		read.Repos[repo] = r
	}
	return read
}

// loadCache reads the cache ConfigMap; a missing one is an empty cache, an
// unreadable one is logged and ignored (the next answers are full ones).
func loadCache(ctx context.Context, env *runner.Env) (*corev1.ConfigMap, *github.PageCache, error) {
	cm, err := env.Client.CoreV1().ConfigMaps(env.Namespace()).Get(ctx, CacheConfigMap, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil, nil
	case err != nil:
		return nil, nil, fmt.Errorf("failed to read the ConfigMap %s: %w", CacheConfigMap, err)
	}
	cache, err := decodeCache(cm.BinaryData[cacheKey])
	if err != nil {
		logging.From(ctx).Warn().Err(err).Msg("cache of the conditional requests unreadable: reading everything again")
		return cm, nil, nil
	}
	return cm, cache, nil
}

func decodeCache(data []byte) (*github.PageCache, error) {
	if len(data) == 0 {
		return nil, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("failed to read the cache: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("failed to read the cache: %w", err)
	}
	var c github.PageCache
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("failed to decode the cache: %w", err)
	}
	return &c, nil
}

func encodeCache(c github.PageCache) ([]byte, error) {
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("failed to encode the cache: %w", err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(raw); err != nil {
		return nil, fmt.Errorf("failed to compress the cache: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("failed to compress the cache: %w", err)
	}
	return buf.Bytes(), nil
}

// saveCache writes the cache of the conditional requests, unless an action
// before it failed.
type saveCache struct {
	cm    *corev1.ConfigMap // as read; nil when there was none
	data  []byte
	pages int
	out   *outcome
}

// newSaveCache returns the action saving c, or nil when the ConfigMap holds
// it already (or there is none and nothing to keep).
func newSaveCache(cm *corev1.ConfigMap, c github.PageCache, out *outcome) (*saveCache, error) {
	if cm == nil && len(c.Pages) == 0 {
		return nil, nil
	}
	if cm != nil {
		if old, err := decodeCache(cm.BinaryData[cacheKey]); err == nil && old != nil && samePages(*old, c) {
			return nil, nil
		}
	}
	data, err := encodeCache(c)
	if err != nil {
		return nil, err
	}
	return &saveCache{cm: cm, data: data, pages: len(c.Pages), out: out}, nil
}

func samePages(a, b github.PageCache) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

func (a *saveCache) String() string {
	return fmt.Sprintf("save the ETags of %d pages in the ConfigMap %s", a.pages, CacheConfigMap)
}

func (a *saveCache) Apply(ctx context.Context, env *runner.Env) error {
	if a.out.failed {
		logging.From(ctx).Info().Msg("an action failed: the cache is not saved, the next run reads again")
		return nil
	}
	cms := env.Client.CoreV1().ConfigMaps(env.Namespace())
	if a.cm == nil {
		_, err := cms.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: CacheConfigMap, Labels: map[string]string{"app.kubernetes.io/part-of": "runboat", "app.kubernetes.io/component": Name}},
			BinaryData: map[string][]byte{cacheKey: a.data},
		}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("failed to create the ConfigMap %s: %w", CacheConfigMap, err)
		}
		return nil
	}
	cm := a.cm.DeepCopy()
	cm.BinaryData = map[string][]byte{cacheKey: a.data}
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("failed to update the ConfigMap %s: %w", CacheConfigMap, err)
	}
	return nil
}
