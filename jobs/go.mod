module runboat.dev/jobs

go 1.26.0

require runboat.dev/shared v0.0.0

replace runboat.dev/shared => ../shared

replace runboat.dev/kubefiles => ../kubefiles
