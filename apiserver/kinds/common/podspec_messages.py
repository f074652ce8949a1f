"""Protobuf field tables of PodTemplateSpec, PodSpec and everything they contain.

Facts only (see ``apiserver/protobuf.py`` for the notation), shared by every kind that embeds a
pod spec; the field numbers are those of k8s.io/api core/v1 ``generated.proto``.
"""

from __future__ import annotations

# EphemeralContainerCommon is Container's fields under Container's numbers (generated.proto says
# it is "a copy of all fields in Container to be inlined in EphemeralContainer").
_CONTAINER = (
    "name:1:s! image:2:s command:3:*s args:4:*s workingDir:5:s ports:6:*ContainerPort "
    "envFrom:19:*EnvFromSource env:7:*EnvVar resources:8:ResourceRequirements "
    "resizePolicy:23:*ContainerResizePolicy restartPolicy:24:s! "
    "restartPolicyRules:25:*ContainerRestartRule volumeMounts:9:*VolumeMount "
    "volumeDevices:21:*VolumeDevice livenessProbe:10:Probe readinessProbe:11:Probe "
    "startupProbe:22:Probe lifecycle:12:Lifecycle terminationMessagePath:13:s "
    "terminationMessagePolicy:20:s imagePullPolicy:14:s securityContext:15:SecurityContext "
    "stdin:16:b stdinOnce:17:b tty:18:b")

PROTOBUF_MESSAGES: dict[str, str] = {
    "PodTemplateSpec": "metadata:1:ObjectMeta spec:2:PodSpec",
    "PodSpec": (
        "volumes:1:*Volume initContainers:20:*Container containers:2:*Container "
        "ephemeralContainers:34:*EphemeralContainer restartPolicy:3:s "
        "terminationGracePeriodSeconds:4:i! activeDeadlineSeconds:5:i! dnsPolicy:6:s "
        "nodeSelector:7:{s} serviceAccountName:8:s serviceAccount:9:s "
        "automountServiceAccountToken:21:b! nodeName:10:s hostNetwork:11:b hostPID:12:b "
        "hostIPC:13:b shareProcessNamespace:27:b! securityContext:14:PodSecurityContext "
        "imagePullSecrets:15:*LocalObjectReference hostname:16:s subdomain:17:s "
        "affinity:18:Affinity schedulerName:19:s tolerations:22:*Toleration "
        "hostAliases:23:*HostAlias priorityClassName:24:s priority:25:i! dnsConfig:26:PodDNSConfig "
        "readinessGates:28:*PodReadinessGate runtimeClassName:29:s! enableServiceLinks:30:b! "
        "preemptionPolicy:31:s! overhead:32:{Quantity} "
        "topologySpreadConstraints:33:*TopologySpreadConstraint setHostnameAsFQDN:35:b! os:36:PodOS "
        "hostUsers:37:b! schedulingGates:38:*PodSchedulingGate resourceClaims:39:*PodResourceClaim "
        "resources:40:ResourceRequirements hostnameOverride:41:s! "
        "schedulingGroup:43:PodSchedulingGroup evictionResponders:44:*EvictionResponder"),
    "Affinity": "nodeAffinity:1:NodeAffinity podAffinity:2:PodAffinity podAntiAffinity:3:PodAntiAffinity",
    "Container": _CONTAINER,
    "EphemeralContainer": "-:1:EphemeralContainerCommon targetContainerName:2:s",
    "EvictionResponder": "name:1:s! priority:2:i!",
    "HostAlias": "ip:1:s! hostnames:2:*s",
    "LocalObjectReference": "name:1:s",
    "PodDNSConfig": "nameservers:1:*s searches:2:*s options:3:*PodDNSConfigOption",
    "PodOS": "name:1:s!",
    "PodReadinessGate": "conditionType:1:s!",
    "PodResourceClaim": "name:1:s! resourceClaimName:3:s! resourceClaimTemplateName:4:s!",
    "PodSchedulingGate": "name:1:s!",
    "PodSchedulingGroup": "podGroupName:1:s!",
    "PodSecurityContext": (
        "seLinuxOptions:1:SELinuxOptions windowsOptions:8:WindowsSecurityContextOptions "
        "runAsUser:2:i! runAsGroup:6:i! runAsNonRoot:3:b! supplementalGroups:4:*i "
        "supplementalGroupsPolicy:12:s! fsGroup:5:i! sysctls:7:*Sysctl fsGroupChangePolicy:9:s! "
        "seccompProfile:10:SeccompProfile appArmorProfile:11:AppArmorProfile "
        "seLinuxChangePolicy:13:s!"),
    "ResourceRequirements": "limits:1:{Quantity} requests:2:{Quantity} claims:3:*ResourceClaim",
    "Toleration": "key:1:s operator:2:s value:3:s effect:4:s tolerationSeconds:5:i!",
    "TopologySpreadConstraint": (
        "maxSkew:1:i! topologyKey:2:s! whenUnsatisfiable:3:s! labelSelector:4:LabelSelector "
        "minDomains:5:i! nodeAffinityPolicy:6:s! nodeTaintsPolicy:7:s! matchLabelKeys:8:*s"),
    "Volume": "name:1:s! -:2:VolumeSource",
    "NodeAffinity": (
        "requiredDuringSchedulingIgnoredDuringExecution:1:NodeSelector "
        "preferredDuringSchedulingIgnoredDuringExecution:2:*PreferredSchedulingTerm"),
    "PodAffinity": (
        "requiredDuringSchedulingIgnoredDuringExecution:1:*PodAffinityTerm "
        "preferredDuringSchedulingIgnoredDuringExecution:2:*WeightedPodAffinityTerm"),
    "PodAntiAffinity": (
        "requiredDuringSchedulingIgnoredDuringExecution:1:*PodAffinityTerm "
        "preferredDuringSchedulingIgnoredDuringExecution:2:*WeightedPodAffinityTerm"),
    "ContainerPort": "name:1:s hostPort:2:i containerPort:3:i! protocol:4:s hostIP:5:s",
    "ContainerResizePolicy": "resourceName:1:s! restartPolicy:2:s!",
    "ContainerRestartRule": "action:1:s exitCodes:2:ContainerRestartRuleOnExitCodes",
    "EnvFromSource": "prefix:1:s configMapRef:2:ConfigMapEnvSource secretRef:3:SecretEnvSource",
    "EnvVar": "name:1:s! value:2:s valueFrom:3:EnvVarSource",
    "Lifecycle": "postStart:1:LifecycleHandler preStop:2:LifecycleHandler stopSignal:3:s!",
    "Probe": (
        "-:1:ProbeHandler initialDelaySeconds:2:i timeoutSeconds:3:i periodSeconds:4:i "
        "successThreshold:5:i failureThreshold:6:i terminationGracePeriodSeconds:7:i!"),
    "SecurityContext": (
        "capabilities:1:Capabilities privileged:2:b! seLinuxOptions:3:SELinuxOptions "
        "windowsOptions:10:WindowsSecurityContextOptions runAsUser:4:i! runAsGroup:8:i! "
        "runAsNonRoot:5:b! readOnlyRootFilesystem:6:b! allowPrivilegeEscalation:7:b! procMount:9:s! "
        "seccompProfile:11:SeccompProfile appArmorProfile:12:AppArmorProfile"),
    "VolumeDevice": "name:1:s! devicePath:2:s!",
    "VolumeMount": (
        "name:1:s! readOnly:2:b recursiveReadOnly:7:s! mountPath:3:s! subPath:4:s "
        "mountPropagation:5:s! subPathExpr:6:s bindMountOptions:8:*s"),
    "EphemeralContainerCommon": _CONTAINER,
    "PodDNSConfigOption": "name:1:s value:2:s!",
    "AppArmorProfile": "type:1:s! localhostProfile:2:s!",
    "SELinuxOptions": "user:1:s role:2:s type:3:s level:4:s",
    "SeccompProfile": "type:1:s! localhostProfile:2:s!",
    "Sysctl": "name:1:s! value:2:s!",
    "WindowsSecurityContextOptions": (
        "gmsaCredentialSpecName:1:s! gmsaCredentialSpec:2:s! runAsUserName:3:s! hostProcess:4:b!"),
    "ResourceClaim": "name:1:s! request:2:s",
    "VolumeSource": (
        "hostPath:1:HostPathVolumeSource emptyDir:2:EmptyDirVolumeSource "
        "gcePersistentDisk:3:GCEPersistentDiskVolumeSource "
        "awsElasticBlockStore:4:AWSElasticBlockStoreVolumeSource gitRepo:5:GitRepoVolumeSource "
        "secret:6:SecretVolumeSource nfs:7:NFSVolumeSource iscsi:8:ISCSIVolumeSource "
        "glusterfs:9:GlusterfsVolumeSource "
        "persistentVolumeClaim:10:PersistentVolumeClaimVolumeSource rbd:11:RBDVolumeSource "
        "flexVolume:12:FlexVolumeSource cinder:13:CinderVolumeSource cephfs:14:CephFSVolumeSource "
        "flocker:15:FlockerVolumeSource downwardAPI:16:DownwardAPIVolumeSource fc:17:FCVolumeSource "
        "azureFile:18:AzureFileVolumeSource configMap:19:ConfigMapVolumeSource "
        "vsphereVolume:20:VsphereVirtualDiskVolumeSource quobyte:21:QuobyteVolumeSource "
        "azureDisk:22:AzureDiskVolumeSource "
        "photonPersistentDisk:23:PhotonPersistentDiskVolumeSource "
        "projected:26:ProjectedVolumeSource portworxVolume:24:PortworxVolumeSource "
        "scaleIO:25:ScaleIOVolumeSource storageos:27:StorageOSVolumeSource csi:28:CSIVolumeSource "
        "ephemeral:29:EphemeralVolumeSource image:30:ImageVolumeSource"),
    "NodeSelector": "nodeSelectorTerms:1:*NodeSelectorTerm",
    "PreferredSchedulingTerm": "weight:1:i! preference:2:NodeSelectorTerm",
    "PodAffinityTerm": (
        "labelSelector:1:LabelSelector namespaces:2:*s topologyKey:3:s! "
        "namespaceSelector:4:LabelSelector matchLabelKeys:5:*s mismatchLabelKeys:6:*s"),
    "WeightedPodAffinityTerm": "weight:1:i! podAffinityTerm:2:PodAffinityTerm",
    "ContainerRestartRuleOnExitCodes": "operator:1:s values:2:*i",
    "ConfigMapEnvSource": "-:1:LocalObjectReference optional:2:b!",
    "SecretEnvSource": "-:1:LocalObjectReference optional:2:b!",
    "EnvVarSource": (
        "fieldRef:1:ObjectFieldSelector resourceFieldRef:2:ResourceFieldSelector "
        "configMapKeyRef:3:ConfigMapKeySelector secretKeyRef:4:SecretKeySelector "
        "fileKeyRef:5:FileKeySelector"),
    "LifecycleHandler": (
        "exec:1:ExecAction httpGet:2:HTTPGetAction tcpSocket:3:TCPSocketAction sleep:4:SleepAction"),
    "ProbeHandler": "exec:1:ExecAction httpGet:2:HTTPGetAction tcpSocket:3:TCPSocketAction grpc:4:GRPCAction",
    "Capabilities": "add:1:*s drop:2:*s",
    "AWSElasticBlockStoreVolumeSource": "volumeID:1:s! fsType:2:s partition:3:i readOnly:4:b",
    "AzureDiskVolumeSource": (
        "diskName:1:s! diskURI:2:s! cachingMode:3:s! fsType:4:s! readOnly:5:b! kind:6:s!"),
    "AzureFileVolumeSource": "secretName:1:s! shareName:2:s! readOnly:3:b",
    "CSIVolumeSource": (
        "driver:1:s! readOnly:2:b! fsType:3:s! volumeAttributes:4:{s} "
        "nodePublishSecretRef:5:LocalObjectReference"),
    "CephFSVolumeSource": (
        "monitors:1:*s path:2:s user:3:s secretFile:4:s secretRef:5:LocalObjectReference "
        "readOnly:6:b"),
    "CinderVolumeSource": "volumeID:1:s! fsType:2:s readOnly:3:b secretRef:4:LocalObjectReference",
    "ConfigMapVolumeSource": (
        "-:1:LocalObjectReference items:2:*KeyToPath defaultMode:3:i! optional:4:b! "
        "defaultUser:5:i!"),
    "DownwardAPIVolumeSource": "items:1:*DownwardAPIVolumeFile defaultMode:2:i! defaultUser:3:i!",
    "EmptyDirVolumeSource": "medium:1:s sizeLimit:2:Quantity mode:3:i!",
    "EphemeralVolumeSource": "volumeClaimTemplate:1:PersistentVolumeClaimTemplate",
    "FCVolumeSource": "targetWWNs:1:*s lun:2:i! fsType:3:s readOnly:4:b wwids:5:*s",
    "FlexVolumeSource": "driver:1:s! fsType:2:s secretRef:3:LocalObjectReference readOnly:4:b options:5:{s}",
    "FlockerVolumeSource": "datasetName:1:s datasetUUID:2:s",
    "GCEPersistentDiskVolumeSource": "pdName:1:s! fsType:2:s partition:3:i readOnly:4:b",
    "GitRepoVolumeSource": "repository:1:s! revision:2:s directory:3:s",
    "GlusterfsVolumeSource": "endpoints:1:s! path:2:s! readOnly:3:b",
    "HostPathVolumeSource": "path:1:s! type:2:s!",
    "ISCSIVolumeSource": (
        "targetPortal:1:s! iqn:2:s! lun:3:i! iscsiInterface:4:s fsType:5:s readOnly:6:b "
        "portals:7:*s chapAuthDiscovery:8:b chapAuthSession:11:b secretRef:10:LocalObjectReference "
        "initiatorName:12:s!"),
    "ImageVolumeSource": "reference:1:s pullPolicy:2:s",
    "NFSVolumeSource": "server:1:s! path:2:s! readOnly:3:b",
    "PersistentVolumeClaimVolumeSource": "claimName:1:s! readOnly:2:b",
    "PhotonPersistentDiskVolumeSource": "pdID:1:s! fsType:2:s",
    "PortworxVolumeSource": "volumeID:1:s! fsType:2:s readOnly:3:b",
    "ProjectedVolumeSource": "sources:1:*VolumeProjection defaultMode:2:i! defaultUser:3:i!",
    "QuobyteVolumeSource": "registry:1:s! volume:2:s! readOnly:3:b user:4:s group:5:s tenant:6:s",
    "RBDVolumeSource": (
        "monitors:1:*s image:2:s! fsType:3:s pool:4:s user:5:s keyring:6:s "
        "secretRef:7:LocalObjectReference readOnly:8:b"),
    "ScaleIOVolumeSource": (
        "gateway:1:s! system:2:s! secretRef:3:LocalObjectReference sslEnabled:4:b "
        "protectionDomain:5:s storagePool:6:s storageMode:7:s volumeName:8:s fsType:9:s "
        "readOnly:10:b"),
    "SecretVolumeSource": "secretName:1:s items:2:*KeyToPath defaultMode:3:i! optional:4:b! defaultUser:5:i!",
    "StorageOSVolumeSource": (
        "volumeName:1:s volumeNamespace:2:s fsType:3:s readOnly:4:b "
        "secretRef:5:LocalObjectReference"),
    "VsphereVirtualDiskVolumeSource": "volumePath:1:s! fsType:2:s storagePolicyName:3:s storagePolicyID:4:s",
    "NodeSelectorTerm": "matchExpressions:1:*NodeSelectorRequirement matchFields:2:*NodeSelectorRequirement",
    "ConfigMapKeySelector": "-:1:LocalObjectReference key:2:s! optional:3:b!",
    "FileKeySelector": "volumeName:1:s! path:2:s! key:3:s! optional:4:b!",
    "ObjectFieldSelector": "apiVersion:1:s fieldPath:2:s!",
    "ResourceFieldSelector": "containerName:1:s resource:2:s! divisor:3:Quantity",
    "SecretKeySelector": "-:1:LocalObjectReference key:2:s! optional:3:b!",
    "ExecAction": "command:1:*s",
    "HTTPGetAction": (
        "path:1:s port:2:IntOrString host:3:s scheme:4:s httpHeaders:5:*HTTPHeader protocol:6:s!"),
    "SleepAction": "seconds:1:i!",
    "TCPSocketAction": "port:1:IntOrString host:2:s",
    "GRPCAction": "port:1:i! service:2:s! mode:3:s!",
    "KeyToPath": "key:1:s! path:2:s! mode:3:i! user:4:i!",
    "DownwardAPIVolumeFile": (
        "path:1:s! fieldRef:2:ObjectFieldSelector resourceFieldRef:3:ResourceFieldSelector "
        "mode:4:i! user:5:i!"),
    "PersistentVolumeClaimTemplate": "metadata:1:ObjectMeta spec:2:PersistentVolumeClaimSpec",
    "VolumeProjection": (
        "secret:1:SecretProjection downwardAPI:2:DownwardAPIProjection "
        "configMap:3:ConfigMapProjection serviceAccountToken:4:ServiceAccountTokenProjection "
        "clusterTrustBundle:5:ClusterTrustBundleProjection "
        "podCertificate:6:PodCertificateProjection"),
    "NodeSelectorRequirement": "key:1:s! operator:2:s! values:3:*s",
    "HTTPHeader": "name:1:s! value:2:s!",
    "PersistentVolumeClaimSpec": (
        "accessModes:1:*s selector:4:LabelSelector resources:2:VolumeResourceRequirements "
        "volumeName:3:s storageClassName:5:s! volumeMode:6:s! "
        "dataSource:7:TypedLocalObjectReference dataSourceRef:8:TypedObjectReference "
        "volumeAttributesClassName:9:s!"),
    "ClusterTrustBundleProjection": (
        "name:1:s! signerName:2:s! labelSelector:3:LabelSelector optional:5:b! path:4:s! user:6:i!"),
    "ConfigMapProjection": "-:1:LocalObjectReference items:2:*KeyToPath optional:4:b!",
    "DownwardAPIProjection": "items:1:*DownwardAPIVolumeFile",
    "PodCertificateProjection": (
        "signerName:1:s keyType:2:s maxExpirationSeconds:3:i! credentialBundlePath:4:s keyPath:5:s "
        "certificateChainPath:6:s userAnnotations:7:{s} user:8:i!"),
    "SecretProjection": "-:1:LocalObjectReference items:2:*KeyToPath optional:4:b!",
    "ServiceAccountTokenProjection": "audience:1:s expirationSeconds:2:i! path:3:s! user:4:i!",
    "TypedObjectReference": "apiGroup:1:s! kind:2:s! name:3:s! namespace:4:s!",
    "VolumeResourceRequirements": "limits:1:{Quantity} requests:2:{Quantity}",
}
