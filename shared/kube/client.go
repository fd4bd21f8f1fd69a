// Package kube is the project's access to the Kubernetes API server: one
// client factory, the paginated list, and the apply of rendered objects.
package kube

import (
	"errors"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// KubeconfigDataEnv names the variable that may hold a whole kubeconfig, for
// runtimes that have neither a service account nor a file (AWS Lambda).
const KubeconfigDataEnv = "RUNBOAT_KUBECONFIG_DATA"

// Options tune the clients.
type Options struct {
	// UserAgent names the binary in the API server's logs and audit.
	UserAgent string
	// QPS and Burst bound the request rate; zero means the defaults below.
	QPS   float32
	Burst int
}

const (
	defaultQPS   = 50
	defaultBurst = 100
)

// Config returns a client configuration, from the first source found:
// $RUNBOAT_KUBECONFIG_DATA (kubeconfig content), $KUBECONFIG, the in-cluster
// service account, then ~/.kube/config.
func Config(opts Options) (*rest.Config, error) {
	cfg, err := load()
	if err != nil {
		return nil, err
	}
	cfg.UserAgent = opts.UserAgent
	cfg.QPS, cfg.Burst = opts.QPS, opts.Burst
	if cfg.QPS == 0 {
		cfg.QPS = defaultQPS
	}
	if cfg.Burst == 0 {
		cfg.Burst = defaultBurst
	}
	return cfg, nil
}

func load() (*rest.Config, error) {
	if data := os.Getenv(KubeconfigDataEnv); data != "" {
		cfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(data))
		if err != nil {
			return nil, fmt.Errorf("failed to load the kubeconfig in %s: %w", KubeconfigDataEnv, err)
		}
		return cfg, nil
	}
	// An explicit $KUBECONFIG wins over the service account of a pod.
	if os.Getenv("KUBECONFIG") == "" {
		cfg, err := rest.InClusterConfig()
		if err == nil {
			return cfg, nil
		}
		if !errors.Is(err, rest.ErrNotInCluster) {
			return nil, fmt.Errorf("failed to load the in-cluster configuration: %w", err)
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("failed to load a kubeconfig (set KUBECONFIG or %s, or run in a cluster): %w", KubeconfigDataEnv, err)
	}
	return cfg, nil
}

// Clients are the clients of one configuration, made once per process and
// shared by everything in it (the webhook's deployer, the console's and the
// jobs' operations, the jobs themselves): one discovery cache and one
// RESTMapper, whatever the number of users.
//
// Unit tests build one as a struct literal of fakes, with a static Mapper
// (meta/testrestmapper).
type Clients struct {
	// Config is the configuration the clients were made of; kube.Config
	// sets its QPS, Burst and user agent.
	Config *rest.Config
	// Typed is the typed client of the API groups the project uses. It
	// speaks protocol buffers: reads of thousands of Deployments decode much
	// faster than as JSON.
	Typed Interface
	// Dynamic and Metadata speak JSON (they have no protocol buffers).
	Dynamic  dynamic.Interface
	Metadata metadata.Interface
	// Mapper resolves kinds and resource types, short names included (pvc,
	// deploy...) as kubectl does. Discovery is fetched on first use and
	// cached for the life of the Clients.
	Mapper meta.RESTMapper
}

// NewClients returns the clients of cfg. Their reads answered 500, 502,
// 503 or 504, or timed out, are tried again a few times (retryReads).
func NewClients(cfg *rest.Config) (*Clients, error) {
	if cfg == nil {
		return nil, errors.New("failed to create the Kubernetes clients: no client configuration")
	}
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(retryReads)
	typedConfig := rest.CopyConfig(cfg)
	typedConfig.ContentType = runtime.ContentTypeProtobuf
	typedConfig.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	typed, err := newTyped(typedConfig)
	if err != nil {
		return nil, fmt.Errorf("failed to create the Kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to create the dynamic client: %w", err)
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to create the metadata client: %w", err)
	}
	return &Clients{Config: cfg, Typed: typed, Dynamic: dyn, Metadata: meta, Mapper: NewMapper(typed.Discovery())}, nil
}

// NewMapper returns a RESTMapper on disc that also knows the short names of
// resources (pvc, deploy...), as kubectl does. The short names and the
// mappings read one discovery cache, fetched on first use.
func NewMapper(disc discovery.DiscoveryInterface) meta.RESTMapper {
	cached := memory.NewMemCacheClient(disc)
	return restmapper.NewShortcutExpander(restmapper.NewDeferredDiscoveryRESTMapper(cached), cached, nil)
}

// Applier returns an Applier acting with the dynamic client, resolving kinds
// with the Mapper.
func (c *Clients) Applier() *Applier {
	return &Applier{dynamic: c.Dynamic, mapper: c.Mapper}
}
