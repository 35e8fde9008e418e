"""initialize, initialized, shutdown and configuration: settings from every source, model load, session."""

from __future__ import annotations

import asyncio
import logging
import os

from lsprotocol import types

from lsp_server.config import SECTION, SETTING_NAMES
from lsp_server.features.commands import record_kept
from lsp_server.services.recorder import HeldStore

log = logging.getLogger("tact")
CONFIGURATION_REGISTRATION_ID = "tact-configuration"
PARENT_CHECK_S = 3.0  # how often the client's process (initialize's processId) is looked for, as vscode-languageserver


async def follow_gate(ls) -> None:
    """Load the acceptance model the settings name now, one change after another, each reading the settings as
    they are when its turn comes: two changes loaded at once on the executor's threads finished in either
    order, and a slow older load left the gate on a model the settings no longer named."""
    async with ls.gate_follows:
        loaded = await asyncio.get_running_loop().run_in_executor(None, ls.gate.follow, ls.settings)
    if loaded is False:
        warn_gate_off(ls)


def warn_gate_off(ls) -> None:
    """Tell the user the acceptance model did not load, so every suggestion is shown."""
    ls.window_show_message(types.ShowMessageParams(
        type=types.MessageType.Warning, message=f"Tact: acceptance gate off, every suggestion is shown ({ls.gate.reason})"))


def register(server) -> None:
    @server.feature(types.INITIALIZE)
    def initialize(ls, params: types.InitializeParams) -> None:
        info = params.client_info
        ls.client_name = info.name if info else ""
        ls.client_version = (info.version or "") if info else ""
        options = params.initialization_options
        if isinstance(options, dict) and isinstance(options.get(SECTION), dict):
            options = options[SECTION]  # accept both {tact: {...}} and {...}
        ls.apply_settings(options if isinstance(options, dict) else None, "initializationOptions")
        caps = params.capabilities.workspace
        if caps and caps.configuration:  # the settings that decide telemetry come at `initialized`: hold till then
            ls.recorder.switch(HeldStore())
        else:
            ls.open_telemetry()

    @server.feature(types.INITIALIZED)
    async def initialized(ls, params: types.InitializedParams) -> None:
        if getattr(ls, "edit_timer", None) is not None:  # a second one started a second timer and session start
            log.warning("a second `initialized` notification is ignored")
            return
        ls.gate.start_due = True  # requests wait for the gate from here (the settings are pulled first)
        # first: what the user types while the settings come and the model loads is finalized on time too
        ls.edit_timer = asyncio.ensure_future(expire_edits(ls))
        pid = getattr(ls, "process_id", None)
        if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0:
            if process_alive(pid):
                ls.parent_watch = asyncio.ensure_future(watch_parent(ls, pid))
            else:  # another PID namespace (a server in a container, its editor outside): nothing to watch
                log.info("the client's process %d is not visible here: the server does not watch it", pid)
        await pull_configuration(ls)
        register_configuration_changes(ls)
        ls.open_telemetry()  # workspace/configuration may have turned telemetry off or moved its database
        loop = asyncio.get_running_loop()
        load = load_model(ls)
        gate = loop.run_in_executor(None, ls.gate.start, ls.settings, ls.recorder.database)
        preload_next_edits(ls)
        status = await load
        if await gate is False and ls.settings.acceptance_gate:
            warn_gate_off(ls)  # as a later change of the path says it: in the log alone, no one saw it
        await follow_gate(ls)  # acceptanceModelPath changed while the gate started: start() read it before
        if not ls.shutting_down:  # a session ended before its model loaded has said its start at shutdown
            session_started(ls, status)
        report_degraded(ls)

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(ls, params: types.DidChangeConfigurationParams) -> None:
        settings = params.settings
        before = ls.settings.to_camel()
        values = settings.get(SECTION) if isinstance(settings, dict) else None
        if not isinstance(values, dict) and isinstance(settings, dict) and not settings.keys().isdisjoint(SETTING_NAMES):
            values = settings  # the flat form `initialize` takes too: Helix sends its `config` as it is, both times
        if isinstance(values, dict):
            ls.apply_settings(values, "didChangeConfiguration")
        else:
            await pull_configuration(ls)
        if ls.open_telemetry() and ls.recorder.database:  # another database: the session starts there too
            session_started(ls, ls.completions.status)
        if (after := ls.settings.to_camel()) != before:
            # a push that changes nothing (the one a registration starts with, a client that also synchronizes the
            # section itself) is no change to record
            ls.recorder.settings_changed(after)
        await load_model(ls)
        preload_next_edits(ls)
        await follow_gate(ls)
        report_degraded(ls)

    @server.feature(types.SHUTDOWN)
    def shutdown(ls, params=None) -> None:
        end_session(ls, "shutdown")

    @server.feature(types.EXIT)
    def exit_(ls, params=None) -> None:
        ls.exit_received = True  # read by `serve` as the process ends


def end_session(ls, reason: str) -> None:
    """Record the session's end (``shutdown``; ``client left``: exit without shutdown, or the client's pipe closed;
    ``interrupted``: Ctrl-C on a server started by hand; ``terminated``: SIGTERM or SIGHUP), stop the inference
    worker and close the telemetry store."""
    ls.shutting_down = True
    ls.close_recorded_documents()
    if ls.recorder.recorded and not ls.recorder.started:
        # its start waits for the model and the gate: a session shut down before they loaded would be left without
        # its client, settings and models (its requests, edits and end logged all the same)
        session_started(ls, ls.completions.status)
    ls.scheduler.shutdown()
    record_kept(ls, ls.undo_watch.end())  # the accepts still watched: what is left of them now
    ls.recorder.end_unended("sessionEnded")  # a request still running, a suggestion still on screen
    ls.recorder.session_ended(reason)
    ls.recorder.close()


def load_model(ls) -> asyncio.Future:
    """The model and weights the settings name, on the completion service's loader thread: nothing to do when they
    are the ones loaded, and other weights of the loaded model switch in place. Resolves to its ModelStatus."""
    return asyncio.wrap_future(ls.completions.start_loading(ls.settings.model_path, weights=ls.settings.decode_weights))


def preload_next_edits(ls) -> asyncio.Future:
    """The edit ranker the settings name (`NextEditService.preload`) loaded on an executor thread, not waited for: the
    first next edit of a session loaded it and took 100-330 ms."""
    return asyncio.get_running_loop().run_in_executor(None, ls.next_edits.preload, ls.settings)


async def pull_configuration(ls) -> None:
    """workspace/configuration, when the client offers it; failures keep the current settings."""
    caps = ls.client_capabilities.workspace
    if not (caps and caps.configuration):
        return
    try:
        result = await asyncio.wait_for(ls.workspace_configuration_async(
            types.ConfigurationParams(items=[types.ConfigurationItem(section=SECTION)])), timeout=5)
    except Exception as exc:  # clients answer in many odd ways; settings stay as they are
        log.warning("workspace/configuration failed: %s", exc)
        return
    if result and isinstance(result[0], dict):
        ls.apply_settings(result[0], "workspace/configuration")


def register_configuration_changes(ls) -> None:
    """Ask a client that registers dynamically to push changes of the ``tact`` section: vscode-languageclient sends
    workspace/didChangeConfiguration only for sections a server registers (or its own extension synchronizes), so
    other clients built on it kept the settings of the start. Not waited for: a client that never answers
    delays nothing."""
    caps = ls.client_capabilities.workspace
    changes = caps.did_change_configuration if caps else None
    if not (changes and changes.dynamic_registration):
        return
    registration = types.Registration(id=CONFIGURATION_REGISTRATION_ID, method=types.WORKSPACE_DID_CHANGE_CONFIGURATION,
                                      register_options=types.DidChangeConfigurationRegistrationOptions(section=SECTION))

    def answered(future) -> None:
        if not future.cancelled() and (exc := future.exception()) is not None:
            log.warning("client/registerCapability for settings changes failed: %s", exc)

    ls.client_register_capability(types.RegistrationParams(registrations=[registration])).add_done_callback(answered)


def session_started(ls, status) -> None:
    workspace = ls.workspace.root_uri if ls.workspace else None
    ls.recorder.session_started(ls.client_name, ls.client_version, ls.version, ls.settings.to_camel(),
                                {"completion": status.as_dict(), "acceptance": ls.gate.status()}, workspace)


def report_degraded(ls) -> None:
    """Say in the log and to the user why there are no suggestions, once per failure: a settings change that keeps
    the same failure is not told again, but a new one (another path, or the model failing again after it
    loaded) is, where telling only the first left the later ones silent."""
    status = ls.completions.status
    if status.ready or status.loading:
        ls.degraded_reported = ""
        return
    reason = status.reason
    if ls.degraded_reported == reason:
        return
    ls.degraded_reported = reason
    log.warning("Tact is running without a model: %s", reason)
    ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning,
                                                   message=f"Tact: no completions ({reason})"))


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (another user's counts: it is there)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it runs, as another user
        return True
    return True


async def watch_parent(ls, pid: int) -> None:
    """LSP: a server whose client process is gone exits. An editor killed while something else held the pipes open
    (a wrapper, another child) left the server running with its model loaded, and its session never ended."""
    while not ls.shutting_down:
        await asyncio.sleep(PARENT_CHECK_S)
        if not ls.shutting_down and not process_alive(pid):
            log.warning("the client's process %d is gone: the server stops", pid)
            try:
                end_session(ls, "client left")
            finally:
                logging.shutdown()
                os._exit(1)  # as a lost pipe: stdin's reader thread may wait for ever, and the exit would join it


async def expire_edits(ls) -> None:
    """Finalize edits idle past the coalescing window, so they reach telemetry promptly."""
    while True:
        await asyncio.sleep(0.5)
        try:
            ls.recorder.edits(ls.documents.expire())
        except Exception:
            log.warning("edit expiry failed", exc_info=True)
