"""Development tools of notebook-operator: the cloud emulator (cloudsim), the local API server
(localcluster) and the demo. Not part of the operator's wheel or image."""
