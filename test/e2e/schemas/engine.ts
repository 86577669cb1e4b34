/**
 * JSON Schemas of the Engine API responses Docker clients read, written for berth from the
 * Engine API reference (v1.47 definitions: ContainerInspectResponse, ContainerSummary,
 * ImageInspect, ImageSummary, SystemInfo, SystemVersion). They check the fields and types that
 * clients rely on, not every optional field.
 */
const str = { type: "string" } as const;
const int = { type: "integer" } as const;
const bool = { type: "boolean" } as const;
const strArr = { type: "array", items: str } as const;
const nullableStrArr = { type: ["array", "null"], items: str } as const;
const labels = { type: ["object", "null"], additionalProperties: str } as const;

export const containerState = {
  type: "object",
  required: ["Status", "Running", "Paused", "Restarting", "OOMKilled", "Dead", "Pid", "ExitCode", "Error", "StartedAt", "FinishedAt"],
  properties: {
    Status: { enum: ["created", "running", "paused", "restarting", "removing", "exited", "dead"] },
    Running: bool,
    Paused: bool,
    Restarting: bool,
    OOMKilled: bool,
    Dead: bool,
    Pid: int,
    ExitCode: int,
    Error: str,
    StartedAt: str,
    FinishedAt: str,
    Health: {
      type: "object",
      required: ["Status", "FailingStreak", "Log"],
      properties: { Status: { enum: ["none", "starting", "healthy", "unhealthy"] }, FailingStreak: int, Log: { type: "array" } },
    },
  },
} as const;

const containerConfig = {
  type: "object",
  required: ["Hostname", "Env", "Cmd", "Image", "Labels"],
  properties: {
    Hostname: str,
    Domainname: str,
    User: str,
    Tty: bool,
    OpenStdin: bool,
    Env: nullableStrArr,
    Cmd: nullableStrArr,
    Entrypoint: nullableStrArr,
    Image: str,
    WorkingDir: str,
    Labels: labels,
    Volumes: { type: ["object", "null"] },
    ExposedPorts: { type: ["object", "null"] },
  },
} as const;

const mountPoint = {
  type: "object",
  required: ["Type", "Source", "Destination", "Mode", "RW", "Propagation"],
  properties: {
    Type: { enum: ["bind", "volume", "tmpfs", "npipe", "cluster"] },
    Name: str,
    Source: str,
    Destination: str,
    Driver: str,
    Mode: str,
    RW: bool,
    Propagation: str,
  },
} as const;

export const containerInspect = {
  type: "object",
  required: [
    "Id",
    "Created",
    "Path",
    "Args",
    "State",
    "Image",
    "ResolvConfPath",
    "HostnamePath",
    "HostsPath",
    "LogPath",
    "Name",
    "RestartCount",
    "Driver",
    "Platform",
    "HostConfig",
    "GraphDriver",
    "Mounts",
    "Config",
    "NetworkSettings",
  ],
  properties: {
    Id: { type: "string", pattern: "^[a-f0-9]{64}$" },
    Created: str,
    Path: str,
    Args: strArr,
    State: containerState,
    Image: { type: "string", pattern: "^sha256:[a-f0-9]{64}$" },
    Name: { type: "string", pattern: "^/" },
    RestartCount: int,
    Driver: str,
    Platform: str,
    HostConfig: {
      type: "object",
      properties: {
        NetworkMode: str,
        RestartPolicy: { type: "object", properties: { Name: str, MaximumRetryCount: int } },
        AutoRemove: bool,
      },
    },
    GraphDriver: { type: "object", required: ["Name", "Data"], properties: { Name: str, Data: { type: ["object", "null"] } } },
    Mounts: { type: "array", items: mountPoint },
    Config: containerConfig,
    NetworkSettings: {
      type: "object",
      required: ["Networks", "Ports"],
      properties: { Networks: { type: ["object", "null"] }, Ports: { type: ["object", "null"] } },
    },
  },
} as const;

export const containerSummary = {
  type: "array",
  items: {
    type: "object",
    required: [
      "Id",
      "Names",
      "Image",
      "ImageID",
      "Command",
      "Created",
      "Ports",
      "Labels",
      "State",
      "Status",
      "HostConfig",
      "NetworkSettings",
      "Mounts",
    ],
    properties: {
      Id: str,
      Names: strArr,
      Image: str,
      ImageID: str,
      Command: str,
      Created: int,
      Ports: { type: "array" },
      Labels: labels,
      State: str,
      Status: str,
      HostConfig: { type: "object", required: ["NetworkMode"] },
      NetworkSettings: { type: "object", required: ["Networks"] },
      Mounts: { type: "array", items: mountPoint },
    },
  },
} as const;

export const imageSummary = {
  type: "array",
  items: {
    type: "object",
    required: ["Id", "ParentId", "RepoTags", "RepoDigests", "Created", "Size", "SharedSize", "Labels", "Containers"],
    properties: {
      Id: { type: "string", pattern: "^sha256:" },
      ParentId: str,
      RepoTags: strArr,
      RepoDigests: strArr,
      Created: int,
      Size: int,
      SharedSize: int,
      Labels: labels,
      Containers: int,
    },
  },
} as const;

export const imageInspect = {
  type: "object",
  required: ["Id", "RepoTags", "RepoDigests", "Created", "Config", "Architecture", "Os", "Size", "GraphDriver", "RootFS", "Metadata"],
  properties: {
    Id: { type: "string", pattern: "^sha256:[a-f0-9]{64}$" },
    RepoTags: strArr,
    RepoDigests: strArr,
    Created: str,
    Config: containerConfig.properties ? { type: "object" } : {},
    Architecture: str,
    Os: str,
    Size: int,
    RootFS: { type: "object", required: ["Type", "Layers"], properties: { Type: { const: "layers" }, Layers: strArr } },
    Metadata: { type: "object", required: ["LastTagTime"] },
  },
} as const;

export const systemInfo = {
  type: "object",
  required: [
    "ID",
    "Containers",
    "ContainersRunning",
    "ContainersPaused",
    "ContainersStopped",
    "Images",
    "Driver",
    "DockerRootDir",
    "CgroupDriver",
    "CgroupVersion",
    "KernelVersion",
    "OperatingSystem",
    "OSType",
    "Architecture",
    "NCPU",
    "MemTotal",
    "ServerVersion",
    "RegistryConfig",
    "Runtimes",
    "DefaultRuntime",
    "Swarm",
  ],
  properties: {
    Containers: int,
    ContainersRunning: int,
    Images: int,
    Driver: str,
    CgroupVersion: { enum: ["1", "2"] },
    NCPU: int,
    MemTotal: int,
    RegistryConfig: { type: "object", required: ["IndexConfigs", "InsecureRegistryCIDRs", "Mirrors"] },
  },
} as const;

export const systemVersion = {
  type: "object",
  required: ["Version", "ApiVersion", "MinAPIVersion", "Os", "Arch", "Components"],
  properties: {
    Version: str,
    ApiVersion: str,
    MinAPIVersion: str,
    Components: { type: "array", items: { type: "object", required: ["Name", "Version"] } },
  },
} as const;
