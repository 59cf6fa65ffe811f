"""Stand-in for Splunk's private splunk.admin: only what splunktaucclib's AdminExternalHandler uses.

init() serves exactly one request that the harness put in REQUEST (action list or edit) and leaves the outcome in
RESPONSE: the conf items, or the error text. Like splunkd, it refuses arguments the handler's setup() did not declare.
Nothing else of Splunk's admin framework is implemented; any other action fails with KeyError.
"""
ACTION_CREATE, ACTION_EDIT, ACTION_REMOVE, ACTION_LIST = 1, 2, 4, 16
CONTEXT_NONE, CONTEXT_APP_ONLY, CONTEXT_APP_AND_USER = 0, 1, 2
EAI_ENTRY_ACL = "eai:acl"
REQUEST = {}
RESPONSE = {}
_ACTIONS = {"list": (ACTION_LIST, "handleList"), "edit": (ACTION_EDIT, "handleEdit")}


class _Args:
    def __init__(self, data=None):
        self.required, self.optional, self.data, self.id = [], [], data, None

    def addReqArg(self, name):
        self.required.append(name)

    def addOptArg(self, name):
        self.optional.append(name)


class MConfigHandler:
    def __init__(self, action, caller_id, data, session_key):
        self.requestedAction = action
        self.callerArgs = _Args({k: [v] for k, v in data.items()})
        self.callerArgs.id = caller_id
        self.supportedArgs = _Args()
        self._session_key = session_key

    def getSessionKey(self):
        return self._session_key


class ConfItem(dict):
    def __init__(self):
        super().__init__()
        self.metadata = {}

    def setMetadata(self, key, value):
        self.metadata[key] = value


class ConfInfo(dict):
    def __missing__(self, name):
        self[name] = ConfItem()
        return self[name]


def init(handler_class, ctxInfo):
    action, method = _ACTIONS[REQUEST["action"]]
    handler = handler_class(action, REQUEST.get("id"), REQUEST.get("data", {}), REQUEST["session_key"])
    handler.setup()
    declared = handler.supportedArgs.required + handler.supportedArgs.optional
    unknown = sorted(set(REQUEST.get("data", {})) - set(declared))
    if unknown:
        RESPONSE["error"] = 'Argument "{}" is not supported by this handler.'.format(unknown[0])
        return
    conf_info = ConfInfo()
    try:
        getattr(handler, method)(conf_info)
    except Exception as exc:  # noqa: BLE001  splunkd turns any handler exception into an error response with its text
        RESPONSE["error"] = str(exc)
        return
    RESPONSE["entries"] = {name: dict(item) for name, item in conf_info.items()}
