module runboat.dev/functions

go 1.26.0

require runboat.dev/shared v0.0.0

require github.com/aws/aws-lambda-go v1.55.1 // indirect

replace runboat.dev/shared => ../shared
