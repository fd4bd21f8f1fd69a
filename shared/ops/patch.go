package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"runboat.dev/shared/model"
)

// Patch is a JSON patch (RFC 6902) of a build's Deployment, made against the
// Deployment as read. Applied by Ops.Patch, it first sets the
// resourceVersion as read, so that the API server refuses it (409 Conflict)
// when the Deployment changed since.
type Patch struct {
	d   *appsv1.Deployment
	ops []map[string]any
	// annotations and labels tell whether the maps exist, once added.
	annotations, labels bool
}

// NewPatch starts a patch of d, as read.
func NewPatch(d *appsv1.Deployment) *Patch {
	return &Patch{d: d, annotations: d.Annotations != nil, labels: d.Labels != nil}
}

// Empty reports whether the patch changes nothing.
func (p *Patch) Empty() bool { return len(p.ops) == 0 }

// pointer escapes a JSON pointer segment (RFC 6901).
func pointer(segment string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(segment)
}

// SetAnnotation sets an annotation, unless it has that value already.
func (p *Patch) SetAnnotation(key, value string) *Patch {
	return p.set("annotations", p.d.Annotations, &p.annotations, key, value)
}

// RemoveAnnotation removes an annotation, if the Deployment has it.
func (p *Patch) RemoveAnnotation(key string) *Patch {
	if _, ok := p.d.Annotations[key]; ok {
		p.ops = append(p.ops, map[string]any{"op": "remove", "path": "/metadata/annotations/" + pointer(key)})
	}
	return p
}

// SetLabel sets a label, unless it has that value already.
func (p *Patch) SetLabel(key, value string) *Patch {
	return p.set("labels", p.d.Labels, &p.labels, key, value)
}

// set sets key to value in the metadata map field (annotations or labels),
// read as m, unless it has that value already; exists tells whether the map
// exists, once added.
func (p *Patch) set(field string, m map[string]string, exists *bool, key, value string) *Patch {
	if v, ok := m[key]; ok && v == value {
		return p
	}
	if !*exists {
		p.ops = append(p.ops, map[string]any{"op": "add", "path": "/metadata/" + field, "value": map[string]string{}})
		*exists = true
	}
	p.ops = append(p.ops, map[string]any{"op": "add", "path": "/metadata/" + field + "/" + pointer(key), "value": value})
	return p
}

// SetInitStatus sets the annotation runboat/init-status and its copy, the
// label.
func (p *Patch) SetInitStatus(s model.InitStatus) *Patch {
	return p.SetAnnotation(model.AnnotationInitStatus, string(s)).SetLabel(model.LabelInitStatus, string(s))
}

// Scale sets spec.replicas and, when that changes them, stamps
// runboat/last-scaled with now, as the Python runboat does.
func (p *Patch) Scale(replicas int32, now time.Time) *Patch {
	current := int32(0)
	if p.d.Spec.Replicas != nil {
		current = *p.d.Spec.Replicas
	}
	if current == replicas && p.d.Spec.Replicas != nil {
		return p
	}
	p.ops = append(p.ops, map[string]any{"op": "add", "path": "/spec/replicas", "value": replicas})
	if current != replicas {
		p.SetAnnotation(model.AnnotationLastScaled, model.FormatTime(now))
	}
	return p
}

// RemoveFinalizer removes a finalizer, if the Deployment has it.
func (p *Patch) RemoveFinalizer(name string) *Patch {
	i := slices.Index(p.d.Finalizers, name)
	if i < 0 {
		return p
	}
	path := "/metadata/finalizers/" + strconv.Itoa(i)
	p.ops = append(p.ops,
		map[string]any{"op": "test", "path": path, "value": name},
		map[string]any{"op": "remove", "path": path})
	return p
}

// JSON returns the patch, the resourceVersion operation first.
func (p *Patch) JSON() ([]byte, error) {
	ops := make([]map[string]any, 0, len(p.ops)+1)
	ops = append(ops, map[string]any{"op": "replace", "path": "/metadata/resourceVersion", "value": p.d.ResourceVersion})
	ops = append(ops, p.ops...)
	b, err := json.Marshal(ops)
	if err != nil {
		return nil, fmt.Errorf("failed to marshal a JSON patch: %w", err)
	}
	return b, nil
}

// Patch applies p to the Deployment it was made against and returns the
// Deployment as patched. An empty patch writes nothing and returns the
// Deployment as read. The error wraps ErrConflict when the Deployment
// changed since it was read, ErrNotFound when it is gone.
func (o *Ops) Patch(ctx context.Context, p *Patch) (*appsv1.Deployment, error) {
	if p.Empty() {
		return p.d, nil
	}
	if p.d.ResourceVersion == "" {
		return nil, fmt.Errorf("failed to patch Deployment %s: no resourceVersion to patch against", p.d.Name)
	}
	body, err := p.JSON()
	if err != nil {
		return nil, err
	}
	out, err := o.client.AppsV1().Deployments(o.builds.Namespace).Patch(ctx, p.d.Name, types.JSONPatchType, body,
		metav1.PatchOptions{FieldManager: model.FieldManager})
	if err != nil {
		return nil, writeError("patch Deployment "+p.d.Name, err)
	}
	return out, nil
}
