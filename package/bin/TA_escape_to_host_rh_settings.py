
import import_declare_test

from splunktaucclib.rest_handler.endpoint import (
    field,
    validator,
    RestModel,
    MultipleModel,
)
from splunktaucclib.rest_handler import admin_external, util
from splunktaucclib.rest_handler.admin_external import AdminExternalHandler
import logging

util.remove_http_proxy_env_vars()


fields_tunables = [
    field.RestField(
        'allowed_host_paths',
        required=False,
        encrypted=False,
        default='/var/log,/etc/localtime,/usr/share/zoneinfo',
        validator=validator.AllOf(
            validator.String(
                max_len=4096, 
                min_len=0, 
            ), 
            validator.Pattern(
                regex=r"""^\s*(/[A-Za-z0-9._/@+:=-]*\s*(,\s*/[A-Za-z0-9._/@+:=-]*\s*)*)?$""", 
            )
        )
    ), 
    field.RestField(
        'privileged_threshold',
        required=True,
        encrypted=False,
        default='5',
        validator=validator.Number(
            max_val=100000, 
            min_val=0, 
            is_int=True, 
        )
    ), 
    field.RestField(
        'syscall_allowlist',
        required=False,
        encrypted=False,
        default=None,
        validator=validator.AllOf(
            validator.String(
                max_len=4096, 
                min_len=0, 
            ), 
            validator.Pattern(
                regex=r"""^\s*((unshare|setns|mount|umount2|keyctl|add_key|request_key|pivot_root|chroot|open_by_handle_at|init_module|finit_module)\s*(,\s*(unshare|setns|mount|umount2|keyctl|add_key|request_key|pivot_root|chroot|open_by_handle_at|init_module|finit_module)\s*)*)?$""", 
            )
        )
    ), 
    field.RestField(
        'time_window',
        required=True,
        encrypted=False,
        default='300',
        validator=validator.Number(
            max_val=86400, 
            min_val=1, 
            is_int=True, 
        )
    ), 
    field.RestField(
        'restricted_host_dirs',
        required=False,
        encrypted=False,
        default='C:\Windows,C:\ProgramData,C:\Program Files,C:\Program Files (x86)',
        validator=validator.AllOf(
            validator.String(
                max_len=4096, 
                min_len=0, 
            ), 
            validator.Pattern(
                regex=r"""^\s*(([A-Za-z]:[\\/]|\\\\[A-Za-z0-9._$-]+\\|//[A-Za-z0-9._$-]+/)[A-Za-z0-9 ._\\/()%$~+-]*(,\s*([A-Za-z]:[\\/]|\\\\[A-Za-z0-9._$-]+\\|//[A-Za-z0-9._$-]+/)[A-Za-z0-9 ._\\/()%$~+-]*)*)?$""", 
            )
        )
    ), 
    field.RestField(
        'allowed_kernel_modules',
        required=False,
        encrypted=False,
        default=None,
        validator=validator.AllOf(
            validator.String(
                max_len=4096, 
                min_len=0, 
            ), 
            validator.Pattern(
                regex=r"""^\s*([A-Za-z0-9_.-]+\s*(,\s*[A-Za-z0-9_.-]+\s*)*)?$""", 
            )
        )
    )
]
model_tunables = RestModel(fields_tunables, name='tunables')


fields_data_sources = [
    field.RestField(
        'kube_audit_indexes',
        required=False,
        encrypted=False,
        default=None,
        validator=validator.AllOf(
            validator.String(
                max_len=4096, 
                min_len=0, 
            ), 
            validator.Pattern(
                regex=r"""^\s*([a-z0-9][a-z0-9_-]*\s*(,\s*[a-z0-9][a-z0-9_-]*\s*)*)?$""", 
            )
        )
    ), 
    field.RestField(
        'kube_audit_sourcetypes',
        required=True,
        encrypted=False,
        default='kube:apiserver-audit',
        validator=validator.AllOf(
            validator.String(
                max_len=4096, 
                min_len=1, 
            ), 
            validator.Pattern(
                regex=r"""^\s*[A-Za-z0-9_][A-Za-z0-9_.:*/-]*\s*(,\s*[A-Za-z0-9_][A-Za-z0-9_.:*/-]*\s*)*$""", 
            )
        )
    ), 
    field.RestField(
        'docker_indexes',
        required=False,
        encrypted=False,
        default=None,
        validator=validator.AllOf(
            validator.String(
                max_len=4096, 
                min_len=0, 
            ), 
            validator.Pattern(
                regex=r"""^\s*([a-z0-9][a-z0-9_-]*\s*(,\s*[a-z0-9][a-z0-9_-]*\s*)*)?$""", 
            )
        )
    ), 
    field.RestField(
        'docker_sourcetypes',
        required=True,
        encrypted=False,
        default='docker:daemon,docker:events,docker:inspect',
        validator=validator.AllOf(
            validator.String(
                max_len=4096, 
                min_len=1, 
            ), 
            validator.Pattern(
                regex=r"""^\s*[A-Za-z0-9_][A-Za-z0-9_.:*/-]*\s*(,\s*[A-Za-z0-9_][A-Za-z0-9_.:*/-]*\s*)*$""", 
            )
        )
    ), 
    field.RestField(
        'auditd_indexes',
        required=False,
        encrypted=False,
        default=None,
        validator=validator.AllOf(
            validator.String(
                max_len=4096, 
                min_len=0, 
            ), 
            validator.Pattern(
                regex=r"""^\s*([a-z0-9][a-z0-9_-]*\s*(,\s*[a-z0-9][a-z0-9_-]*\s*)*)?$""", 
            )
        )
    ), 
    field.RestField(
        'auditd_sourcetypes',
        required=True,
        encrypted=False,
        default='linux:audit,auditd',
        validator=validator.AllOf(
            validator.String(
                max_len=4096, 
                min_len=1, 
            ), 
            validator.Pattern(
                regex=r"""^\s*[A-Za-z0-9_][A-Za-z0-9_.:*/-]*\s*(,\s*[A-Za-z0-9_][A-Za-z0-9_.:*/-]*\s*)*$""", 
            )
        )
    ), 
    field.RestField(
        'sysmon_linux_indexes',
        required=False,
        encrypted=False,
        default=None,
        validator=validator.AllOf(
            validator.String(
                max_len=4096, 
                min_len=0, 
            ), 
            validator.Pattern(
                regex=r"""^\s*([a-z0-9][a-z0-9_-]*\s*(,\s*[a-z0-9][a-z0-9_-]*\s*)*)?$""", 
            )
        )
    ), 
    field.RestField(
        'sysmon_linux_sourcetypes',
        required=True,
        encrypted=False,
        default='sysmon:linux',
        validator=validator.AllOf(
            validator.String(
                max_len=4096, 
                min_len=1, 
            ), 
            validator.Pattern(
                regex=r"""^\s*[A-Za-z0-9_][A-Za-z0-9_.:*/-]*\s*(,\s*[A-Za-z0-9_][A-Za-z0-9_.:*/-]*\s*)*$""", 
            )
        )
    ), 
    field.RestField(
        'windows_security_indexes',
        required=False,
        encrypted=False,
        default=None,
        validator=validator.AllOf(
            validator.String(
                max_len=4096, 
                min_len=0, 
            ), 
            validator.Pattern(
                regex=r"""^\s*([a-z0-9][a-z0-9_-]*\s*(,\s*[a-z0-9][a-z0-9_-]*\s*)*)?$""", 
            )
        )
    ), 
    field.RestField(
        'windows_security_sourcetypes',
        required=True,
        encrypted=False,
        default='XmlWinEventLog,WinEventLog',
        validator=validator.AllOf(
            validator.String(
                max_len=4096, 
                min_len=1, 
            ), 
            validator.Pattern(
                regex=r"""^\s*[A-Za-z0-9_][A-Za-z0-9_.:*/-]*\s*(,\s*[A-Za-z0-9_][A-Za-z0-9_.:*/-]*\s*)*$""", 
            )
        )
    ), 
    field.RestField(
        'windows_sysmon_indexes',
        required=False,
        encrypted=False,
        default=None,
        validator=validator.AllOf(
            validator.String(
                max_len=4096, 
                min_len=0, 
            ), 
            validator.Pattern(
                regex=r"""^\s*([a-z0-9][a-z0-9_-]*\s*(,\s*[a-z0-9][a-z0-9_-]*\s*)*)?$""", 
            )
        )
    ), 
    field.RestField(
        'windows_sysmon_sourcetypes',
        required=True,
        encrypted=False,
        default='XmlWinEventLog',
        validator=validator.AllOf(
            validator.String(
                max_len=4096, 
                min_len=1, 
            ), 
            validator.Pattern(
                regex=r"""^\s*[A-Za-z0-9_][A-Za-z0-9_.:*/-]*\s*(,\s*[A-Za-z0-9_][A-Za-z0-9_.:*/-]*\s*)*$""", 
            )
        )
    ), 
    field.RestField(
        'esxi_indexes',
        required=False,
        encrypted=False,
        default=None,
        validator=validator.AllOf(
            validator.String(
                max_len=4096, 
                min_len=0, 
            ), 
            validator.Pattern(
                regex=r"""^\s*([a-z0-9][a-z0-9_-]*\s*(,\s*[a-z0-9][a-z0-9_-]*\s*)*)?$""", 
            )
        )
    ), 
    field.RestField(
        'esxi_sourcetypes',
        required=True,
        encrypted=False,
        default='vmw-syslog,vmware:esxlog:*',
        validator=validator.AllOf(
            validator.String(
                max_len=4096, 
                min_len=1, 
            ), 
            validator.Pattern(
                regex=r"""^\s*[A-Za-z0-9_][A-Za-z0-9_.:*/-]*\s*(,\s*[A-Za-z0-9_][A-Za-z0-9_.:*/-]*\s*)*$""", 
            )
        )
    ), 
    field.RestField(
        'kube_cluster_field',
        required=True,
        encrypted=False,
        default='host',
        validator=validator.AllOf(
            validator.String(
                max_len=128, 
                min_len=1, 
            ), 
            validator.Pattern(
                regex=r"""^\s*[A-Za-z_][A-Za-z0-9_.]*\s*$""", 
            )
        )
    ), 
    field.RestField(
        'scope_status',
        required=False,
        encrypted=False,
        default=None,
        validator=None
    )
]
model_data_sources = RestModel(fields_data_sources, name='data_sources')


fields_analytics = [
    field.RestField(
        'no_detections',
        required=False,
        encrypted=False,
        default=None,
        validator=None
    )
]
model_analytics = RestModel(fields_analytics, name='analytics')


fields_logging = [
    field.RestField(
        'loglevel',
        required=True,
        encrypted=False,
        default='INFO',
        validator=validator.Pattern(
            regex=r"""^DEBUG|INFO|WARNING|ERROR|CRITICAL$""", 
        )
    )
]
model_logging = RestModel(fields_logging, name='logging')


endpoint = MultipleModel(
    'ta_escape_to_host_settings',
    models=[
        model_tunables, 
        model_data_sources, 
        model_analytics, 
        model_logging
    ],
    need_reload=False,
)


# ---------------------------------------------------------------------------------------------------------------------
# Everything above is the file ucc-gen generates from globalConfig.json, verbatim (tests/unit/test_setup_handler_copy.py
# regenerates it and fails on any difference). Below: the setup page's actions on save and on load.
# ---------------------------------------------------------------------------------------------------------------------
from escape_settings_handler import EscapeSettingsHandler  # noqa: E402


if __name__ == '__main__':
    logging.getLogger().addHandler(logging.NullHandler())
    admin_external.handle(
        endpoint,
        handler=EscapeSettingsHandler,
    )
