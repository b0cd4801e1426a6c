{{/* Names and labels shared by every template. */}}

{{- define "jobqueue-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "jobqueue-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "jobqueue-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "jobqueue-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "jobqueue-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "jobqueue-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: jobqueue-operator
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "jobqueue-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "jobqueue-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "jobqueue-operator.image" -}}
{{- include "jobqueue-operator.imageRef" (dict "image" .Values.image "appVersion" .Chart.AppVersion) -}}
{{- end -}}

{{/* The default worker image (the operator's WORKER_IMAGE). */}}
{{- define "jobqueue-operator.workerImage" -}}
{{- include "jobqueue-operator.imageRef" (dict "image" .Values.workerImage "appVersion" .Chart.AppVersion) -}}
{{- end -}}

{{/* repository@digest, else repository:tag (tag defaults to the appVersion). */}}
{{- define "jobqueue-operator.imageRef" -}}
{{- $tag := default .appVersion .image.tag -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The namespaces the operator's RBAC covers: the watched ones, or none for cluster-wide. */}}
{{- define "jobqueue-operator.clusterWide" -}}
{{- if .Values.watchNamespaces -}}false{{- else -}}true{{- end -}}
{{- end -}}
