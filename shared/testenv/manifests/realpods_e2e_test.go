package manifests_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/clock"

	"runboat.dev/shared/config"
	"runboat.dev/shared/deploy"
	"runboat.dev/shared/kube"
	"runboat.dev/shared/model"
	"runboat.dev/shared/ops"
	"runboat.dev/shared/release"
	"runboat.dev/shared/testenv/e2e"
	"runboat.dev/shared/testenv/localcluster"
	"runboat.dev/shared/testenv/manifests"
)

// jobsImage is the name the jobs' image is imported under into the real
// node.
const jobsImage = "localhost/runboat/jobs:e2e"

// brokenEnv is the environment of the builds of acme/broken: the demo's
// init fails.
var brokenEnv = map[string]string{"RUNBOAT_DEMO_INIT_FAIL": "yes"}

// inPodKubefiles is where the jobs' pods find the demo kubefiles: an
// installer with kubefiles of its own mounts them so (the image holds only
// the embedded ones).
const inPodKubefiles = "/kubefiles/demo"

var (
	imageOnce sync.Once
	imageErr  error
)

// importJobsImage builds the jobs' image as `make package` does (the same
// binaries and layer, for this machine's platform only) and imports it
// into the real node, once per test process.
func importJobsImage(t *testing.T, c *localcluster.Cluster, root string) {
	t.Helper()
	imageOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		bins, err := release.BuildJobs(ctx, root, runtime.GOARCH)
		if err != nil {
			imageErr = err
			return
		}
		idx, err := release.JobsIndex(map[string]map[string][]byte{runtime.GOARCH: bins})
		if err != nil {
			imageErr = err
			return
		}
		tarPath := filepath.Join(t.TempDir(), "runboat-jobs.oci.tar")
		if imageErr = localcluster.WriteImageIndexTar(tarPath, idx); imageErr != nil {
			return
		}
		imageErr = c.ImportImage(ctx, tarPath, jobsImage)
	})
	if imageErr != nil {
		t.Fatalf("the jobs' image: %v", imageErr)
	}
}

// kubefilesConfigMap holds the files of the kubefiles folder dir, each
// under a key made of its path, and the volume that lays them out again.
func kubefilesConfigMap(t *testing.T, dir, name string) (*corev1.ConfigMap, corev1.Volume) {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{}}
	vol := corev1.Volume{Name: "kubefiles", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: name},
	}}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		key := strings.ReplaceAll(filepath.ToSlash(rel), "/", "..")
		cm.Data[key] = string(b)
		vol.ConfigMap.Items = append(vol.ConfigMap.Items, corev1.KeyToPath{Key: key, Path: filepath.ToSlash(rel)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return cm, vol
}

// realInstall installs the manifests as an installer of the demo build
// would, on the real node: the jobs' image, a configuration of the
// repositories acme/* on the demo kubefiles (mounted into the jobs' pods),
// at most maxStarted builds started, no commit statuses.
func realInstall(t *testing.T, env *e2e.Env, root string, maxStarted int) {
	t.Helper()
	ctx := context.Background()
	dir, err := manifests.Dir()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifests.Render(dir, manifests.Options{Namespace: env.Namespace, Image: jobsImage})
	if err != nil {
		t.Fatal(err)
	}
	cm, vol := kubefilesConfigMap(t, filepath.Join(root, "kubefiles", "demo"), "demo-kubefiles")
	if _, err := env.Client.CoreV1().ConfigMaps(env.Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	repos, err := json.Marshal([]map[string]any{
		{"repo": "^acme/broken$", "branch": ".*", "builds": []map[string]any{{
			"image": localcluster.DemoImage, "kubefiles_path": inPodKubefiles, "env": brokenEnv,
		}}},
		{"repo": "^acme/", "branch": ".*", "builds": []map[string]any{{
			"image": localcluster.DemoImage, "kubefiles_path": inPodKubefiles,
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		switch {
		case o.GetKind() == "ConfigMap" && o.GetName() == manifests.ConfigMap:
			for k, v := range map[string]string{
				"RUNBOAT_REPOS":                   string(repos),
				"RUNBOAT_BUILD_DOMAIN":            "builds.test",
				"RUNBOAT_BUILD_ENV":               "{}",
				"RUNBOAT_BUILD_TEMPLATE_VARS":     "{}",
				"RUNBOAT_MAX_STARTED":             fmt.Sprint(maxStarted),
				"RUNBOAT_MAX_INITIALIZING":        "3",
				"RUNBOAT_DISABLE_COMMIT_STATUSES": "true",
			} {
				if err := unstructured.SetNestedField(o.Object, v, "data", k); err != nil {
					t.Fatal(err)
				}
			}
		case o.GetKind() == "CronJob":
			mountKubefiles(t, o, vol)
		}
	}
	admin, err := kube.NewClients(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := manifests.InstallObjects(ctx, admin, env.Namespace, objs, manifests.TestSecretData, true); err != nil {
		t.Fatal(err)
	}
}

// mountKubefiles adds the kubefiles volume to the CronJob o, mounted at
// inPodKubefiles in its container.
func mountKubefiles(t *testing.T, o *unstructured.Unstructured, vol corev1.Volume) {
	t.Helper()
	spec := []string{"spec", "jobTemplate", "spec", "template", "spec"}
	v, err := toMap(vol)
	if err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedSlice(o.Object, []any{v}, append(spec, "volumes")...); err != nil {
		t.Fatal(err)
	}
	containers, _, err := unstructured.NestedSlice(o.Object, append(spec, "containers")...)
	if err != nil || len(containers) != 1 {
		t.Fatalf("CronJob %s: containers %v %v", o.GetName(), containers, err)
	}
	c := containers[0].(map[string]any)
	c["volumeMounts"] = []any{map[string]any{"name": vol.Name, "mountPath": inPodKubefiles, "readOnly": true}}
	if err := unstructured.SetNestedSlice(o.Object, containers, append(spec, "containers")...); err != nil {
		t.Fatal(err)
	}
}

func toMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

// runJob runs the CronJob cronJob once by hand, as the README says
// (`kubectl create job --from=cronjob/...`), and waits for its Job to
// succeed; it returns the Job's pod.
func runJob(t *testing.T, env *e2e.Env, cronJob, name string) *corev1.Pod {
	t.Helper()
	kubectl(t, env, "create", "job", "--from=cronjob/"+cronJob, name)
	waitJobOrLog(t, env, name)
	pods, err := env.Client.CoreV1().Pods(env.Namespace).List(context.Background(), metav1.ListOptions{LabelSelector: "job-name=" + name})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("the pods of the Job %s: %v %v", name, pods, err)
	}
	return &pods.Items[0]
}

// waitJobOrLog waits for the Job name to succeed; if it fails, the test
// fails with its pods' logs.
func waitJobOrLog(t *testing.T, env *e2e.Env, name string) {
	t.Helper()
	e2e.Wait(t, "the Job "+name+" to succeed", func(ctx context.Context) (bool, error) {
		j, err := env.Client.BatchV1().Jobs(env.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range j.Status.Conditions {
			if c.Status != corev1.ConditionTrue {
				continue
			}
			switch c.Type {
			case batchv1.JobComplete:
				return true, nil
			case batchv1.JobFailed:
				return false, fmt.Errorf("the Job failed (%s: %s); its log:\n%s", c.Reason, c.Message, jobLogs(ctx, env, name))
			}
		}
		return false, nil
	})
}

func jobLogs(ctx context.Context, env *e2e.Env, job string) string {
	pods, err := env.Client.CoreV1().Pods(env.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + job})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		logs, err := env.Client.CoreV1().Pods(env.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		fmt.Fprintf(&b, "pod %s: %s %v\n", p.Name, logs, err)
	}
	return b.String()
}

// build returns the Deployment of the build named name.
func build(t *testing.T, env *e2e.Env, name string) *appsv1.Deployment {
	t.Helper()
	list, err := env.Client.AppsV1().Deployments(env.Namespace).List(context.Background(), metav1.ListOptions{
		LabelSelector: labels.Set{model.LabelBuild: name}.String(),
	})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("the Deployment of build %s: %v %v", name, list, err)
	}
	return &list.Items[0]
}

func waitInitStatus(t *testing.T, env *e2e.Env, name string, want model.InitStatus) {
	t.Helper()
	e2e.Wait(t, "build "+name+" init-status "+string(want), func(ctx context.Context) (bool, error) {
		return build(t, env, name).Annotations[model.AnnotationInitStatus] == string(want), nil
	})
}

// The jobs run for real, as their CronJobs' pods on the real node (the
// image of `make package`, in-cluster configuration, the ServiceAccount's
// token, user 65532), on demo builds whose pods run for real too: the
// initializer launches the init Jobs, which run the demo's init, and then
// reads their outcome; a started build's pod becomes Ready by its probe and
// answers HTTP on its pod IP, with no API token mounted; the stopper stops
// the least recently started build past RUNBOAT_MAX_STARTED; the undeployer
// runs the cleanup Job of a deleted build and then removes it. A build
// whose init fails keeps the real log of its init Job.
func TestE2ERealJobsOnDemoBuilds(t *testing.T) {
	t.Parallel()
	env := e2e.New(t)
	env.OnRealNode(t)
	dir, err := manifests.Dir()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(dir)
	importJobsImage(t, env.Cluster, root)
	realInstall(t, env, root, 1)
	ctx := context.Background()

	// Two builds, as the webhook deploys them (the test's process renders
	// the same kubefiles from the project's folder).
	admin, err := kube.NewClients(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	kubefiles := filepath.Join(root, "kubefiles", "demo")
	broken, err := config.NewRepoRule("^acme/broken$", ".*", config.BuildSettings{Image: localcluster.DemoImage, KubefilesPath: kubefiles, Env: brokenEnv})
	if err != nil {
		t.Fatal(err)
	}
	rule, err := config.NewRepoRule("^acme/", ".*", config.BuildSettings{Image: localcluster.DemoImage, KubefilesPath: kubefiles})
	if err != nil {
		t.Fatal(err)
	}
	builds := config.Builds{Repos: config.RepoRules{broken, rule}, Namespace: env.Namespace, Domain: "builds.test"}
	deployer := deploy.New(builds, admin, clock.RealClock{})
	deployBuild := func(repo string, pr int) string {
		ref, err := model.NewRef(repo, "main", pr, fmt.Sprintf("%040x", 0xbeef0+pr))
		if err != nil {
			t.Fatal(err)
		}
		name, _, err := deployer.Deploy(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		return name
	}
	names := []string{deployBuild("acme/web", 1), deployBuild("acme/web", 2)}
	failing := deployBuild("acme/broken", 3)

	// The initializer's pod: the jobs' image, as the ServiceAccount, with
	// its token.
	pod := runJob(t, env, manifests.CronJobInitializer, "initializer-1")
	if pod.Spec.NodeName != env.Cluster.RealNodeName() || pod.Spec.ServiceAccountName != manifests.ServiceAccount || !hasTokenVolume(pod.Spec) {
		t.Errorf("the initializer ran on %q as %q, token mounted %v; want the real node, %q, its token",
			pod.Spec.NodeName, pod.Spec.ServiceAccountName, hasTokenVolume(pod.Spec), manifests.ServiceAccount)
	}
	for _, name := range names {
		waitInitStatus(t, env, name, model.InitStarted)
		waitJobOrLog(t, env, name+"-initialize")
		logs := jobLogs(ctx, env, name+"-initialize")
		if !strings.Contains(logs, "initializing build "+name+": acme/web at commit") || !strings.Contains(logs, "initialized") {
			t.Errorf("the init Job of %s logged %q, want the demo's init", name, logs)
		}
	}
	waitInitStatus(t, env, failing, model.InitStarted)
	e2e.Wait(t, "the init Job of "+failing+" to fail", func(ctx context.Context) (bool, error) {
		j, err := env.Client.BatchV1().Jobs(env.Namespace).Get(ctx, failing+"-initialize", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return j.Status.Failed > 0, nil
	})
	runJob(t, env, manifests.CronJobInitializer, "initializer-2")
	for _, name := range names {
		waitInitStatus(t, env, name, model.InitSucceeded)
	}
	// The failed init's real log, kept by the initializer.
	waitInitStatus(t, env, failing, model.InitFailed)
	initLog, err := env.Client.CoreV1().ConfigMaps(env.Namespace).Get(ctx, model.InitLogName(failing), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the init log of the failed build: %v", err)
	}
	if got := initLog.Data[model.InitLogKey]; !strings.Contains(got, "initializing build "+failing) || !strings.Contains(got, `failing the initialization, as RUNBOAT_DEMO_INIT_FAIL="yes" asks`) {
		t.Errorf("the init log of the failed build is %q, want the demo's output", got)
	}

	// Started, as the console starts a build: its pod runs the demo's
	// server, Ready by its probe.
	o, err := ops.New(ops.Options{Clients: admin, Builds: builds})
	if err != nil {
		t.Fatal(err)
	}
	web := startAndServe(t, env, o, names[0])
	if hasTokenVolume(web.Spec) {
		t.Errorf("the build's pod has the API token mounted: %v", web.Spec.Volumes)
	}
	// As runc mounted them: the token in the jobs' container, none in the
	// build's.
	if !slices.Contains(containerMounts(t, env, pod), tokenDir) {
		t.Errorf("the initializer's container has no %s: the check below proves nothing", tokenDir)
	}
	if mounts := containerMounts(t, env, web); slices.Contains(mounts, tokenDir) {
		t.Errorf("the build's container has %s mounted: %q", tokenDir, mounts)
	}
	// runboat/last-scaled has a second's resolution: started in the same
	// second, the two would tie for the least recently started.
	time.Sleep(1100 * time.Millisecond)
	startAndServe(t, env, o, names[1])

	// Two started, one allowed: the stopper stops the least recently
	// started.
	runJob(t, env, manifests.CronJobStopper, "stopper-1")
	e2e.Wait(t, "the stopper to stop "+names[0], func(ctx context.Context) (bool, error) {
		d := build(t, env, names[0])
		return d.Spec.Replicas != nil && *d.Spec.Replicas == 0, nil
	})
	if d := build(t, env, names[1]); d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("the stopper stopped the most recently started build too")
	}

	// Undeployed: the undeployer runs the cleanup Job, then removes the
	// build.
	d := build(t, env, names[0])
	if err := env.Client.AppsV1().Deployments(env.Namespace).Delete(ctx, d.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	runJob(t, env, manifests.CronJobUndeployer, "undeployer-1")
	cleanup := waitCleanupJob(t, env, names[0])
	waitJobOrLog(t, env, cleanup)
	if logs := jobLogs(ctx, env, cleanup); !strings.Contains(logs, "cleaning up build "+names[0]) || !strings.Contains(logs, "cleaned up") {
		t.Errorf("the cleanup Job of %s logged %q, want the demo's cleanup", names[0], logs)
	}
	runJob(t, env, manifests.CronJobUndeployer, "undeployer-2")
	e2e.Wait(t, "build "+names[0]+" to be gone", func(ctx context.Context) (bool, error) {
		_, err := env.Client.AppsV1().Deployments(env.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}

// tokenDir is where the kubelet mounts a ServiceAccount's token.
const tokenDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// containerMounts returns the mounts of the first container of pod, a pod
// of the real node, as containerd has them.
func containerMounts(t *testing.T, env *e2e.Env, pod *corev1.Pod) []string {
	t.Helper()
	p, err := env.Client.CoreV1().Pods(env.Namespace).Get(context.Background(), pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Status.ContainerStatuses) == 0 {
		t.Fatalf("pod %s has no container status", pod.Name)
	}
	mounts, err := env.Cluster.ContainerMounts(context.Background(), p.Status.ContainerStatuses[0].ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	return mounts
}

// startAndServe starts the build name and waits for its pod to be Ready;
// the pod must answer HTTP on its IP with the build's page.
func startAndServe(t *testing.T, env *e2e.Env, o *ops.Ops, name string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	if _, err := o.Start(ctx, build(t, env, name), "test"); err != nil {
		t.Fatal(err)
	}
	var ready *corev1.Pod
	e2e.Wait(t, "the pod of build "+name+" to be Ready", func(ctx context.Context) (bool, error) {
		pods, err := env.Client.CoreV1().Pods(env.Namespace).List(ctx, metav1.ListOptions{
			LabelSelector: labels.Set{model.LabelBuild: name, "app": "web"}.String(),
		})
		if err != nil {
			return false, err
		}
		for i, p := range pods.Items {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					ready = &pods.Items[i]
					return true, nil
				}
			}
		}
		return false, nil
	})
	body := e2e.HTTPGet(t, fmt.Sprintf("http://%s:8080/", ready.Status.PodIP))
	if want := "runboat demo build " + name + "\n"; !strings.HasPrefix(body, want) {
		t.Errorf("the build's pod answered %q, want it to start with %q", body, want)
	}
	return ready
}

// waitCleanupJob waits for the cleanup Job of the build name and returns
// its name.
func waitCleanupJob(t *testing.T, env *e2e.Env, name string) string {
	t.Helper()
	var job string
	e2e.Wait(t, "the cleanup Job of "+name, func(ctx context.Context) (bool, error) {
		jobs, err := env.Client.BatchV1().Jobs(env.Namespace).List(ctx, metav1.ListOptions{
			LabelSelector: labels.Set{model.LabelBuild: name, model.LabelJobKind: "cleanup"}.String(),
		})
		if err != nil || len(jobs.Items) == 0 {
			return false, err
		}
		job = jobs.Items[0].Name
		return true, nil
	})
	return job
}
