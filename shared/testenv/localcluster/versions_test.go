package localcluster

import "testing"

func TestKubeVersionFor(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		wantErr  bool
	}{
		{in: "v0.37.1", want: "v1.37.1"},
		{in: "v0.38.0-rc.1", want: "v1.38.0-rc.1"},
		{in: "v1.2.3", wantErr: true},
		{in: "v0.", wantErr: true},
		{in: "", wantErr: true},
	} {
		got, err := kubeVersionFor(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("kubeVersionFor(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if got != tc.want {
			t.Errorf("kubeVersionFor(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestKubeVersionFollowsClientGo(t *testing.T) {
	v, err := KubeVersion()
	if err != nil {
		t.Fatalf("KubeVersion: %v", err)
	}
	if len(v) < len("v1.0.0") || v[:3] != "v1." {
		t.Fatalf("KubeVersion() = %q, want v1.X.Y", v)
	}
}
