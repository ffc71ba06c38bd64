{{/*
Labels on every object: the k8s/ base's (app.kubernetes.io/name, part-of) plus Helm's own.
Selectors use name + component only, as the base does: one manager per cluster (its cluster-scoped
RBAC objects have fixed names).
*/}}
{{- define "podgate.labels" -}}
app.kubernetes.io/name: podgate
app.kubernetes.io/part-of: podgate
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* The manager's ServiceAccount as an RBAC subject. */}}
{{- define "podgate.subject" -}}
- kind: ServiceAccount
  name: podgate-manager
  namespace: {{ .Release.Namespace }}
{{- end }}

{{- define "podgate.claimName" -}}
{{- .Values.persistence.existingClaim | default "podgate-data" -}}
{{- end }}
