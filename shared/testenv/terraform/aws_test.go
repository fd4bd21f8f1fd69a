package terraform

import (
	"archive/zip"
	"os"
	"path/filepath"
	"testing"
)

// awsFromEnv is FromEnv for the checks that need the AWS provider, which
// the Go module proxy does not serve (terraform/README.md): they run when
// RUNBOAT_TF_AWS=1 says that the mirror holds it (`make
// terraform-check-aws`).
func awsFromEnv(t *testing.T) *Tofu {
	t.Helper()
	tf := FromEnv(t)
	if os.Getenv("RUNBOAT_TF_AWS") != "1" {
		t.Skip("needs the AWS provider in the mirror: `make terraform-check-aws` runs it (see terraform/README.md)")
	}
	mirror := filepath.Join(filepath.Dir(tf.CLIConfig), "mirror")
	found := false
	for _, host := range []string{"registry.opentofu.org", "registry.terraform.io"} {
		if _, err := os.Stat(filepath.Join(mirror, host, "hashicorp/aws")); err == nil {
			found = true
		}
	}
	if !found {
		t.Fatalf("no hashicorp/aws provider in the mirror %s: the Go module proxy serves none that OpenTofu can run; "+
			"on a machine with network access, `tofu providers mirror` puts it there (terraform/README.md)", mirror)
	}
	return tf
}

// TestValidateAWS validates the modules and the example that need the AWS
// provider.
func TestValidateAWS(t *testing.T) {
	tf := awsFromEnv(t)
	root := Copy(t)
	for _, d := range AWS {
		t.Run(d, func(t *testing.T) {
			if err := tf.InitValidate(filepath.Join(root, d)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// fakeAWS configures the AWS provider of an example so that a plan calls
// no AWS API: fake keys and region, no credential, account or metadata
// look-up. An override file, merged into the example's provider block.
const fakeAWS = `provider "aws" {
  region                      = "eu-west-1"
  access_key                  = "AKIAFAKEFAKEFAKEFAKE"
  secret_key                  = "fake"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
}
`

// TestPlanAWSExample plans examples/aws with fake credentials and inputs:
// every reference, type and constraint between the modules is checked, and
// nothing is asked of AWS (no data source of the configuration calls it at
// plan time).
func TestPlanAWSExample(t *testing.T) {
	tf := awsFromEnv(t)
	dir := filepath.Join(Copy(t), "examples/aws")
	if err := os.WriteFile(filepath.Join(dir, "fake_override.tf"), []byte(fakeAWS), 0o644); err != nil {
		t.Fatal(err)
	}
	zipPath := filepath.Join(t.TempDir(), "runboat-function-arm64.zip")
	writeZip(t, zipPath)
	tf.Must(t, dir, "init", "-backend=false", "-input=false", "-no-color")
	tf.Must(t, dir, "plan", "-input=false", "-no-color", "-refresh=false", "-lock=false",
		"-var", "region=eu-west-1",
		"-var", "cluster_name=runboat",
		"-var", "cluster_endpoint=https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com",
		"-var", "cluster_ca_certificate=-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
		"-var", `api_server_cidrs=["10.0.1.10/32","10.0.2.10/32"]`,
		"-var", "vpc_id=vpc-0123456789abcdef0",
		"-var", `private_subnet_ids=["subnet-0123456789abcdef0","subnet-0123456789abcdef1"]`,
		"-var", "node_security_group_id=sg-0123456789abcdef0",
		"-var", "zone_id=Z0123456789ABCDEFGHIJ",
		"-var", "build_domain=runboat.example.org",
		"-var", `load_balancer={dns_name="lb-123.elb.eu-west-1.amazonaws.com",zone_id="Z2IFOLAFXWLO4F"}`,
		"-var", `repos=[{"repo":"^oca/.*","branch":"^16.0$","builds":[{"image":"ghcr.io/oca/oca-ci/py3.10-odoo16.0:latest"}]}]`,
		"-var", "function_zip="+zipPath,
		"-var", "eks_access_group=runboat-function",
		"-var", "github_webhook_secret=fake",
		"-var", "github_token=fake",
		"-var", "admin_password=fake",
	)
}

// writeZip writes a zip holding an empty bootstrap: what the plan hashes.
func writeZip(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := zip.NewWriter(f)
	if _, err := w.Create("bootstrap"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
