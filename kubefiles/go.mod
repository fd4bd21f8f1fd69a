module runboat.dev/kubefiles

go 1.26.0
