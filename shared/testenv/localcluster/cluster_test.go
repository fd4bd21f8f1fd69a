package localcluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// A server on the cluster's port whose certificate another CA signed is
// reported at once as a foreign server, the error Up starts again on.
func TestWaitReadyReportsAForeignServer(t *testing.T) {
	foreign := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	defer foreign.Close()
	ours, err := New("test", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// The cluster's own CA: a certificate of a key that did not sign the
	// foreign server's.
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: selfSigned(t)})
	writeKubeconfig(t, ours, foreign.URL, ca)

	const timeout = time.Minute
	start := time.Now()
	err = ours.waitReady(context.Background(), timeout, ours.Ready)
	if !errors.Is(err, errForeignServer) {
		t.Fatalf("waitReady = %v, want %v", err, errForeignServer)
	}
	if waited := time.Since(start); waited >= timeout/2 {
		t.Errorf("waitReady waited %s before reporting a foreign server", waited)
	}
}

// A server that is not up yet is waited for, not reported as foreign.
func TestWaitReadyWaitsForAServerNotUp(t *testing.T) {
	down := httptest.NewTLSServer(http.NotFoundHandler())
	url := down.URL
	down.Close()
	ours, err := New("test", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	writeKubeconfig(t, ours, url, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: down.Certificate().Raw}))
	err = ours.waitReady(context.Background(), 2*time.Second, ours.Ready)
	if err == nil || errors.Is(err, errForeignServer) {
		t.Fatalf("waitReady = %v, want a timeout that is not %v", err, errForeignServer)
	}
}

// selfSigned returns a CA certificate of a new key.
func selfSigned(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "another-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func writeKubeconfig(t *testing.T, c *Cluster, server string, ca []byte) {
	t.Helper()
	if err := os.MkdirAll(c.stateDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "x"}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "c"
	if err := clientcmd.WriteToFile(*cfg, c.Kubeconfig()); err != nil {
		t.Fatal(err)
	}
}
