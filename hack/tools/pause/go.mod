module jobqueue-operator/hack/tools/pause

go 1.22
