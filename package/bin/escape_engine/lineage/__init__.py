"""Per-host process lineage of the Linux analytic: the process table (`table`), every rule that attributes a
process to a container (`attribution`) and what a runtime's own command line says (`runtimeargs`)."""
from .attribution import (
                          HELPER_WINDOW,
                          IMAGE_PATH_KEY,
                          LSM_CONTAINER_LABELS,
                          RUNC_INIT_TITLE,
                          Attribution,
                          Exec,
                          Running,
                          Trap,
                          attribute_exec,
                          attribute_running,
                          container_key_of_shim,
                          helper_trap,
                          host_image_container,
                          is_runc_init,
                          is_runtime,
                          sysmon_first_process,
)
from .runtimeargs import RUNTIME_CLIS, SHIMS, container_id_from_argv, runtime_call, shim_args
from .table import DEFAULT_RUNTIME, HISTORY_PER_PID, HostLineage, Proc, anonymous_device, basename

__all__ = ["DEFAULT_RUNTIME", "HELPER_WINDOW", "HISTORY_PER_PID", "IMAGE_PATH_KEY", "LSM_CONTAINER_LABELS",
           "RUNC_INIT_TITLE", "RUNTIME_CLIS", "SHIMS", "Attribution", "Exec", "HostLineage", "Proc", "Running", "Trap",
           "anonymous_device", "attribute_exec", "attribute_running", "basename", "container_id_from_argv",
           "container_key_of_shim", "helper_trap", "host_image_container", "is_runc_init", "is_runtime",
           "runtime_call", "shim_args", "sysmon_first_process"]
