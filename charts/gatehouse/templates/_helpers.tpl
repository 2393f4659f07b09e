{{/* Names and labels. */}}
{{- define "gatehouse.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gatehouse.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "gatehouse.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "gatehouse.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "gatehouse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gatehouse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "gatehouse.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "gatehouse.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "gatehouse.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
Privileges follow from the network placement (values.yaml explains):
  root     an address pool needs NET_ADMIN, which only root can use in a container;
  netBind  hostNetwork without a pool: HAProxy binds low ports through its file capability.
*/}}
{{- define "gatehouse.hostInfrastructure" -}}
{{- if eq .Values.infrastructure "host" }}true{{ end -}}
{{- end -}}
{{- define "gatehouse.hostNetwork" -}}
{{- if and (include "gatehouse.hostInfrastructure" .) .Values.hostNetwork }}true{{ end -}}
{{- end -}}
{{- define "gatehouse.runsAsRoot" -}}
{{- if and (include "gatehouse.hostInfrastructure" .) .Values.addressPool }}true{{ end -}}
{{- end -}}
{{- define "gatehouse.netBindBinary" -}}
{{- if and (include "gatehouse.hostNetwork" .) (not .Values.addressPool) }}true{{ end -}}
{{- end -}}

{{/* --infrastructure kubernetes: the data-plane image, the config stream's Service and address. */}}
{{- define "gatehouse.dataplaneImage" -}}
{{- printf "%s:%s" (default .Values.image.repository .Values.dataplane.image.repository) (default (default .Chart.AppVersion .Values.image.tag) .Values.dataplane.image.tag) -}}
{{- end -}}
{{- define "gatehouse.distributionService" -}}
{{- printf "%s-distribution" (include "gatehouse.fullname" .) -}}
{{- end -}}
{{- define "gatehouse.distributionAddress" -}}
{{- .Values.distribution.address | default (printf "%s.%s.svc:%v" (include "gatehouse.distributionService" .) .Release.Namespace .Values.distribution.port) -}}
{{- end -}}

{{/*
The Gateway API CRDs must be installed first. Helm's lookup returns nothing without a cluster
(`helm template`), so the check runs only when the cluster answers (kube-system exists in every
cluster) and its discovery lacks gateway.networking.k8s.io/v1.
*/}}
{{- define "gatehouse.checkGatewayAPI" -}}
{{- if .Values.gatewayAPI.checkCRDs -}}
{{- if not (.Capabilities.APIVersions.Has "gateway.networking.k8s.io/v1/GatewayClass") -}}
{{- if lookup "v1" "Namespace" "" "kube-system" -}}
{{- fail "\n\nThe Gateway API CRDs (gateway.networking.k8s.io/v1) are not installed in this cluster.\nInstall the v1.6.1 release first, then install this chart again:\n\n  kubectl apply --server-side -f https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.6.1/standard-install.yaml\n\n(or experimental-install.yaml for TLSRoute, TCPRoute and UDPRoute). To skip this check: --set gatewayAPI.checkCRDs=false." -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the admin API's bearer token (key `token`). */}}
{{- define "gatehouse.adminTokenSecret" -}}
{{- .Values.admin.existingTokenSecret | default (printf "%s-admin-token" (include "gatehouse.fullname" .)) -}}
{{- end -}}
