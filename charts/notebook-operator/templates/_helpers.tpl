{{- define "notebook-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "notebook-operator.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "notebook-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "notebook-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "notebook-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "notebook-operator.peering" -}}
{{- if or .Values.peering.enabled (gt (int .Values.replicaCount) 1) -}}true{{- end -}}
{{- end -}}

{{/* The rules the operator needs in each watched namespace (or cluster-wide); each one has a use:
     - the four kinds: kopf lists and watches them and patches their metadata (finalizer, its annotations);
     - their status: the operator writes status through the status subresource;
     - notebooksnapshots create: a cull of a policy with snapshotBeforeStop saves the notebook first;
     - secrets get: a ProviderConfig's credentials Secret, read by name;
     - events create: kopf posts an Event (core v1) for every action and failure;
     - serviceaccounts/token create, for identity.tenantServiceAccount only: a keyless ProviderConfig's token is
       that namespace's ServiceAccount's (TokenRequest API), never the operator's.
     Not granted: list/watch of CRDs and namespaces, which kopf only uses to notice resources and namespaces
     added while it runs; the operator turns that scanning off (it uses the namespaces it is given and what API
     discovery shows at start; the chart installs the CRDs first).
     tests/e2e/test_chart.py runs the operator as this ServiceAccount and checks every verb is used. */}}
{{- define "notebook-operator.rules" -}}
- apiGroups: ["cloudnotebooks.io"]
  resources: ["providerconfigs", "notebookinstances", "idlecullerpolicies", "notebooksnapshots"]
  verbs: ["list", "watch", "patch"]
- apiGroups: ["cloudnotebooks.io"]
  resources: ["providerconfigs/status", "notebookinstances/status", "idlecullerpolicies/status",
              "notebooksnapshots/status"]
  verbs: ["patch"]
- apiGroups: ["cloudnotebooks.io"]
  resources: ["notebooksnapshots"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["serviceaccounts/token"]
  resourceNames: [{{ .Values.identity.tenantServiceAccount | quote }}]
  verbs: ["create"]
{{- end -}}

{{/* Cluster-scoped rules, in either scope: ClusterProviderConfigs (kopf lists, watches and patches them, the
     operator writes their status) and namespace labels (a ClusterProviderConfig's namespaceSelector). */}}
{{- define "notebook-operator.clusterRules" -}}
- apiGroups: ["cloudnotebooks.io"]
  resources: ["clusterproviderconfigs"]
  verbs: ["list", "watch", "patch"]
- apiGroups: ["cloudnotebooks.io"]
  resources: ["clusterproviderconfigs/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- if not .Values.clusterId }}
# The cluster id of ownership tags: the kube-system namespace's uid.
- apiGroups: [""]
  resources: ["namespaces"]
  resourceNames: ["kube-system"]
  verbs: ["get"]
{{- end }}
{{- end -}}
