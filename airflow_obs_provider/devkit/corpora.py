"""Labeled log corpora in the styles of common systems, for accuracy checks and benchmarks.

Each style is a list of templates written the way those systems log (Hadoop/HDFS/Spark Java
loggers, ZooKeeper, BGL/HPC/Thunderbird supercomputer logs, Windows CBS, Linux syslog, Android
logcat, a health app, Apache error logs, Proxifier, OpenSSH, OpenStack, macOS, JSON logs). A
template's ``{slot}``s are filled from generators; every line carries its template id, the
ground truth for Group Accuracy. Sets deliberately include templates that differ only in one
constant word, variables without digits (user names, hosts, booleans) and variables whose
length varies (sizes written two ways, lists of hosts, optional units).
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Gen = Callable[[random.Random], str]

_USERS = ["root", "admin", "test", "guest", "oracle", "postgres", "ubuntu", "git", "ftp", "nagios", "pi",
          "support", "user", "mysql", "www", "backup", "hadoop", "ec2-user", "ansible", "jenkins"]
_HOSTS = ["www.google.com", "api.github.com", "proxy.cse.cuhk.edu.hk", "mail.example.org", "cdn.akamai.net",
          "update.microsoft.com", "s3.amazonaws.com", "login.live.com", "static.xx.fbcdn.net", "ads.yahoo.com"]
_PKGS = ["com.tencent.mm", "com.android.systemui", "com.huawei.health", "com.google.android.gms",
         "com.whatsapp", "com.spotify.music", "org.mozilla.firefox", "com.android.chrome"]
_NODES = ["node-12", "node-103", "gn-7", "tbird-admin1", "bn227", "dn228", "an312", "cn-44"]


def _hex(n: int) -> Gen:
    return lambda r: "".join(r.choice("0123456789abcdef") for _ in range(n))


def _num(lo: int, hi: int) -> Gen:
    return lambda r: str(r.randint(lo, hi))


def _ip(r: random.Random) -> str:
    return f"{r.randint(10, 223)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"


def _size_two_ways(r: random.Random) -> str:
    n = r.randint(0, 900000)
    return f"{n} bytes" if n < 1024 else f"{n} bytes ({n / 1024:.1f} KB)"


def _lifetime(r: random.Random) -> str:
    return "<1 sec" if r.random() < 0.4 else f"{r.randint(0, 59):02d}:{r.randint(0, 59):02d}"


def _path(r: random.Random) -> str:
    parts = [r.choice(["var", "usr", "opt", "home", "data", "tmp", "srv"])]
    parts += [r.choice(["lib", "log", "hadoop", "app", "cache", "spool", "user"]) for _ in range(r.randint(1, 4))]
    return "/" + "/".join(parts) + r.choice(["", ".log", ".dat", "/part-00001", ".conf"])


def _word(r: random.Random) -> str:
    return "".join(r.choice(string.ascii_lowercase) for _ in range(r.randint(4, 9)))


def _hostlist(r: random.Random) -> str:
    return ", ".join(_ip(r) for _ in range(r.randint(1, 4)))


SLOTS: dict[str, Gen] = {
    "int": _num(0, 5000), "big": _num(10**9, 10**13), "port": _num(1024, 65535), "pid": _num(100, 32000),
    "small": _num(0, 64), "status": lambda r: r.choice(["200", "201", "204", "404", "500", "503"]),
    "float": lambda r: f"{r.random() * 100:.4f}", "ms": _num(1, 9000),
    "ip": _ip, "ipport": lambda r: f"{_ip(r)}:{r.randint(1024, 65535)}",
    "sipport": lambda r: f"/{_ip(r)}:{r.randint(1024, 65535)}",
    "blk": lambda r: f"blk_{r.choice(['', '-'])}{r.randint(10**17, 10**19)}",
    "hex": _hex(8), "hex0x": lambda r: "0x" + _hex(8)(r), "uuid": lambda r: "-".join(_hex(n)(r) for n in (8, 4, 4, 4, 12)),
    "req": lambda r: "req-" + "-".join(_hex(n)(r) for n in (8, 4, 4, 4, 12)),
    "path": _path, "winpath": lambda r: "C:\\Windows\\winsxs\\amd64_" + _hex(16)(r) + "\\" + _word(r) + ".dll",
    "url": lambda r: f"http://{r.choice(_HOSTS)}/{_word(r)}/{_word(r)}?id={r.randint(1, 999)}",
    "host": lambda r: r.choice(_HOSTS), "hostport": lambda r: f"{r.choice(_HOSTS)}:{r.choice([80, 443, 5070, 8080])}",
    "user": lambda r: r.choice(_USERS), "pkg": lambda r: r.choice(_PKGS), "node": lambda r: r.choice(_NODES),
    "bool": lambda r: r.choice(["true", "false"]), "word": _word,
    "size": _size_two_ways, "lifetime": _lifetime, "kb": lambda r: f"{r.random() * 900:.1f} KB",
    "dur": lambda r: f"{r.randint(1, 900)}ms", "hostlist": _hostlist,
    "email": lambda r: f"{r.choice(_USERS)}{r.randint(1, 99)}@example.com",
    "tid": lambda r: f"{r.randint(0, 300)}.{r.randint(0, 3)}",
    "attempt": lambda r: f"attempt_{r.randint(10**12, 10**13)}_{r.randint(1, 99):04d}_m_{r.randint(0, 99):06d}_0",
    "ts": lambda r: f"2017-{r.randint(1, 12):02d}-{r.randint(1, 28):02d} {r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}",
    "date": lambda r: f"Sun Jul {r.randint(1, 30)} {r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d} 2005",
    "core": lambda r: f"core.{r.randint(1, 9999)}", "rack": lambda r: f"R{r.randint(0, 77):02d}-M{r.randint(0, 1)}-N{r.randint(0, 15)}",
    "sid": lambda r: f"0x{_hex(12)(r)}", "app": lambda r: r.choice(["chrome.exe", "firefox.exe", "outlook.exe", "svchost.exe"]),
}

STYLES: dict[str, list[str]] = {
    "hdfs": [
        "Receiving block {blk} src: {sipport} dest: {sipport}",
        "Received block {blk} of size {big} from /{ip}",
        "PacketResponder {small} for block {blk} terminating",
        "BLOCK* NameSystem.addStoredBlock: blockMap updated: {ipport} is added to {blk} size {big}",
        "BLOCK* NameSystem.allocateBlock: {path} {blk}",
        "BLOCK* NameSystem.delete: {blk} is added to invalidSet of {ipport}",
        "Deleting block {blk} file {path}",
        "{ipport}:Got exception while serving {blk} to /{ip}:",
        "{ipport} Served block {blk} to /{ip}",
        "Verification succeeded for {blk}",
        "BLOCK* ask {ipport} to replicate {blk} to datanode(s) {ipport}",
        "BLOCK* ask {ipport} to delete {blk}",
    ],
    "hadoop": [
        "Created MRAppMaster for application appattempt_{big}_{int}_{small}",
        "Executing with tokens:",
        "Kind: YARN_AM_RM_TOKEN, Service: , Ident: (appAttemptId {{ application_id {{ id: {int} cluster_timestamp: {big} }} attemptId: {small} }} keyId: {big})",
        "Using mapred newApiCommitter.",
        "OutputCommitter set in config null",
        "Progress of TaskAttempt {attempt} is : {float}",
        "{attempt} TaskAttempt Transitioned from NEW to UNASSIGNED",
        "{attempt} TaskAttempt Transitioned from UNASSIGNED to ASSIGNED",
        "{attempt} TaskAttempt Transitioned from RUNNING to SUCCESS_CONTAINER_CLEANUP",
        "Address change detected. Old: {host}/{ip}:{port} New: {host}:{port}",
        "Retrying connect to server: {host}:{port}. Already tried {small} time(s); maxRetries={small}",
        "ERROR IN CONTACTING RM.",
        "Recalculating schedule, headroom=<memory:{int}, vCores:{small}>",
        "Reduce slow start threshold not met. completedMapsForReduceSlowstart {int}",
    ],
    "spark": [
        "Finished task {tid} in stage {tid} (TID {int}) in {ms} ms on {host} ({small}/{small})",
        "Running task {tid} in stage {tid} (TID {int})",
        "Block {word}_{int} stored as bytes in memory (estimated size {kb}, free {kb})",
        "Found block rdd_{int}_{small} locally",
        "Started reading broadcast variable {int}",
        "Reading broadcast variable {int} took {ms} ms",
        "Partition rdd_{int}_{small} not found, computing it",
        "Registered signal handlers for [TERM, HUP, INT]",
        "Changing view acls to: {user}",
        "Changing modify acls to: {user}",
        "Successfully started service 'sparkDriver' on port {port}.",
        "Successfully started service 'org.apache.spark.network.netty.NettyBlockTransferService' on port {port}.",
        "Removed broadcast_{int}_piece0 on {ipport} in memory (size: {kb}, free: {kb})",
    ],
    "zookeeper": [
        "Accepted socket connection from /{ipport}",
        "Client attempting to establish new session at /{ipport}",
        "Established session {sid} with negotiated timeout {int} for client /{ipport}",
        "Closed socket connection for client /{ipport} which had sessionid {sid}",
        "Closed socket connection for client /{ipport} (no session established for client)",
        "caught end of stream exception",
        "Expiring session {sid}, timeout of {int}ms exceeded",
        "Processed session termination for sessionid: {sid}",
        "Connection broken for id {small}, my id = {small}, error =",
        "Notification: {small} (n.leader), {sid} (n.zxid), {small} (n.round), LOOKING (n.state), {small} (n.sid), {sid} (n.peerEPoch), LOOKING (my state)",
        "Notification: {small} (n.leader), {sid} (n.zxid), {small} (n.round), FOLLOWING (n.state), {small} (n.sid), {sid} (n.peerEPoch), LOOKING (my state)",
        "Have smaller server identifier, so dropping the connection: ({small}, {small})",
    ],
    "bgl": [
        "instruction cache parity error corrected",
        "data cache parity error corrected",
        "generating {core}",
        "{int} double-hummer alignment exceptions",
        "CE sym {small}, at {hex0x}, mask {hex0x}",
        "total of {int} ddr error(s) detected and corrected",
        "ciod: failed to read message prefix on control stream (CioStream socket to {ipport}",
        "ciod: LOGIN chdir({path}) failed: No such file or directory",
        "data TLB error interrupt",
        "idoproxydb hit ASSERT condition: ASSERT expression=0 Source file=idotransportmgr.cpp Source line={int} Function=int IdoTransportMgr::SendPacket(IdoUdpMgr*, BGLCtlPacket*)",
        "rts: kernel terminated for reason {int}",
        "Node card VPD check: {rack}-L{small} node card is not fully functional",
    ],
    "hpc": [
        "PSU status ( on off )",
        "Fan speeds ( {int} {int} {int} {int} {int} {int} )",
        "ServerFileSystem domain storage{small} is full",
        "Component State Change: Component \\042alt0\\042 is in the unavailable state (HWID={int})",
        "Link error on broadcast tree Interconnect-{small}T{small}:{small}:{small}",
        "node-{int} detected configuration change",
        "inconsistent nodesets node-{int} {hex} 0x{hex} node-{int} {hex} allocated",
        "risBoot command Error",
        "boot (command {int}) Error: Node is in wrong state",
        "clusterAddMember (command {int})",
        "ambient={int}",
        "temperature ({int}) exceeds warning threshold",
    ],
    "thunderbird": [
        "session opened for user {user} by (uid={small})",
        "session closed for user {user}",
        "check pass; user unknown",
        "authentication failure; logname= uid={small} euid={small} tty=NODEVssh ruser= rhost={host}",
        "authentication failure; logname= uid={small} euid={small} tty=NODEVssh ruser= rhost={host}  user={user}",
        "Local disk check failed on /dev/sda{small}",
        "synchronized to {ip}, stratum {small}",
        "kernel: ib_sm_sweep.c:{int}: ******************** SWEEP START ********************",
        "(root) CMD (run-parts {path})",
        "DHCPREQUEST on eth{small} to {ip} port {small}",
        "DHCPACK from {ip}",
        "Accepted publickey for {user} from {ip} port {port} ssh2",
    ],
    "windows": [
        "Loaded Servicing Stack v{tid}.{int}.{int} with Core: {winpath}",
        "Session: {big}_{big} initialized by client WindowsUpdateAgent.",
        "Read out cached package applicability for package: Package_for_KB{int}~31bf3856ad364e35~amd64~~{tid}.{small}.{int}, ApplicableState: {small}, CurrentState:{small}",
        "Warning: Unrecognized packageExtended attribute.",
        "Expecting attribute name [HRESULT = {hex0x} - CBS_E_MANIFEST_INVALID_ITEM]",
        "Failed to get next element [HRESULT = {hex0x} - CBS_E_MANIFEST_INVALID_ITEM]",
        "Ending TrustedInstaller initialization.",
        "Starting TrustedInstaller initialization.",
        "SQM: Initializing online with Windows opt-in: False",
        "SQM: Cleaning up report files older than {small} days.",
        "Unloading offline registry hive: {{bf{hex}-{hex}}}GLOBALROOT/Device/HarddiskVolumeShadowCopy{small}",
        "Failed to internally open package. [HRESULT = {hex0x} - CBS_E_INVALID_PACKAGE]",
    ],
    "linux": [
        "cupsd startup succeeded",
        "cupsd shutdown succeeded",
        "syslogd startup succeeded",
        "klogd startup succeeded",
        "session opened for user {user} by (uid={small})",
        "session opened for user {user} by LOGIN(uid={small})",
        "session closed for user {user}",
        "authentication failure; logname= uid={small} euid={small} tty=NODEVssh ruser= rhost={ip}",
        "authentication failure; logname= uid={small} euid={small} tty=NODEVssh ruser= rhost={ip}  user={user}",
        "connection from {ip} () at {date}",
        "ANONYMOUS FTP LOGIN FROM {ip}, (anonymous)",
        "Memory: {int}k/{int}k available ({int}k kernel code, {int}k reserved, {int}k data, {int}k init, {int}k highmem)",
        "Kerberos authentication failed",
        "User unknown timed out after {int} seconds at {date}",
        "creating device node '{path}'",
    ],
    "android": [
        "acquire lock={int}, flags={hex0x}, tag=\"View Lock\", name={pkg}, ws=null, uid={int}, pid={pid}",
        "release:lock={int}, flg=0x0, tag=\"RILJ_ACK_WL\", name=com.android.phone\", ws=null, uid={int}, pid={pid}",
        "Skipping, withExcluded: false, tr.intent:Intent {{ flg={hex0x} cmp={pkg}/.Main (has extras) }}",
        "getRunningAppProcesses: caller {int} does not hold REAL_GET_TASKS; limiting output",
        "setSystemUiVisibility vis={hex} mask={hex} oldVal={hex} newVal={hex} diff={hex} fullscreenStackVis={small} dockedStackVis={small}",
        "visible is system.time.showampm",
        "visible is system.call.count gt 0",
        "Start proc {pid}:{pkg}/u0a{int} for service {pkg}/.push.PushService",
        "startAnimation begins",
        "startAnimation ends",
        "isScreenOn {bool}",
        "updateLightsLocked: hasModemBatteryCharge={bool} displayOn={bool}",
        "Displayed {pkg}/.MainActivity: +{ms}ms",
    ],
    "healthapp": [
        "onStandStepChanged {int}",
        "onExtend:{big} {small} {small} {small}",
        "processHandleBroadcastAction action:android.intent.action.SCREEN_ON",
        "processHandleBroadcastAction action:android.intent.action.TIME_TICK",
        "onReceive action: android.intent.action.SCREEN_OFF",
        "onReceive action: android.intent.action.SCREEN_ON",
        "getTodayTotalDetailSteps = {big}##{int}##{int}##{int}##{int}##{big}",
        "setTodayTotalDetailSteps={big}##{int}##{int}##{int}##{int}##{big}",
        "REPORT : {int} {int} {int} {int}",
        "calculateCaloriesWithCache totalCalories={int}",
        "checkInsertStatus stepStatSum or calorieStatSum is enough",
        "checkInsertStatus stepSum or calorieSum is enough",
        "flush sensor data",
        "initDataPrivacy the dataPrivacy is {bool}",
        "screen status unknown,think screen on",
    ],
    "apache": [
        "jk2_init() Found child {pid} in scoreboard slot {small}",
        "workerEnv.init() ok /etc/httpd/conf/workers2.properties",
        "mod_jk child workerEnv in error state {small}",
        "[client {ip}] Directory index forbidden by rule: {path}",
        "[client {ip}] File does not exist: {path}",
        "jk2_init() Can't find child {pid} in scoreboard",
        "mod_jk child init {small} {small}",
        "Digest: generating secret for digest authentication ...",
    ],
    "proxifier": [
        "{hostport} open through proxy {hostport} HTTPS",
        "{hostport} open through proxy {hostport} SOCKS5",
        "{hostport} close, {size} sent, {size} received, lifetime {lifetime}",
        "{hostport} error : Could not connect through proxy {hostport} - Proxy server cannot establish a connection with the target, status code {int}",
        "{hostport} error : Could not connect through proxy {hostport} - Proxy closed the connection unexpectedly.",
        "{hostport} error : A connection request was canceled before the completion.",
        "{hostport} error : Could not connect to proxy {hostport} - connection attempt failed with error {int}",
    ],
    "openssh": [
        "Invalid user {user} from {ip}",
        "input_userauth_request: invalid user {user} [preauth]",
        "Failed password for invalid user {user} from {ip} port {port} ssh2",
        "Failed password for {user} from {ip} port {port} ssh2",
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}",
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  user={user}",
        "pam_unix(sshd:auth): check pass; user unknown",
        "Received disconnect from {ip}: 11: Bye Bye [preauth]",
        "Connection closed by {ip} [preauth]",
        "reverse mapping checking getaddrinfo for {host} [{ip}] failed - POSSIBLE BREAK-IN ATTEMPT!",
        "PAM {small} more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  user={user}",
        "Accepted password for {user} from {ip} port {port} ssh2",
        "error: Received disconnect from {ip}: 3: com.jcraft.jsch.JSchException: Auth fail [preauth]",
    ],
    "openstack": [
        "{ip} \"GET /v2/{hex}/servers/detail HTTP/1.1\" status: {status} len: {int} time: {float}",
        "{ip} \"POST /v2/{hex}/os-server-external-events HTTP/1.1\" status: {status} len: {int} time: {float}",
        "{ip} \"DELETE /v2/{hex}/servers/{uuid} HTTP/1.1\" status: {status} len: {int} time: {float}",
        "[instance: {uuid}] VM Started (Lifecycle Event)",
        "[instance: {uuid}] VM Stopped (Lifecycle Event)",
        "[instance: {uuid}] VM Paused (Lifecycle Event)",
        "[instance: {uuid}] Took {float} seconds to spawn the instance on the hypervisor.",
        "[instance: {uuid}] Terminating instance",
        "[instance: {uuid}] Instance destroyed successfully.",
        "Active base files: {path}",
        "image {uuid} at ({path}): checking",
        "[req-{uuid} - - - - -] Running instance usage audit for host {node} from {ts} to {ts}. {small} instances.",
        "Compute_service record updated for {node}:{node}",
    ],
    "mac": [
        "ARPT: {int}.{int}: wl0: wl_update_tcpkeep_seq: Original Seq: {big}, Ack: {big}, Win size: {int}",
        "ARPT: {int}.{int}: AirPort_Brcm43xx::powerChange: System Wake - Full wake/ Dark wake / Maintenance wake",
        "ARPT: {int}.{int}: AirPort_Brcm43xx::powerChange: System Sleep",
        "Sandbox: com.apple.Addres({pid}) deny(1) network-outbound {path}",
        "en0: BSSID changed to {hex}",
        "Wake reason: ARPT (Network)",
        "Wake reason: EC.SleepTimer (SleepTimer)",
        "Setting BTCoex Config: enable_2G:1, profile_2G:0, enable_5G:1, profile_5G:0",
        "CCFile::captureLog Received Capture notice id: {big}, log time: {float}",
        "objc[{pid}]: Class FIFinderSyncExtensionHost is implemented in both {path} and {path}. One of the two will be used. Which one is undefined.",
        "[HID] [MT] AppleMultitouchDevice::willTerminate entered",
    ],
    "json": [
        '{{"level":"info","msg":"request completed","method":"GET","path":"/api/v1/users/{int}","status":{status},"duration_ms":{ms},"trace_id":"{hex}"}}',
        '{{"level":"info","msg":"request completed","method":"POST","path":"/api/v1/orders","status":{status},"duration_ms":{ms},"trace_id":"{hex}"}}',
        '{{"level":"error","msg":"payment declined","order_id":"{uuid}","reason":"insufficient funds","amount":{float}}}',
        '{{"level":"warn","msg":"cache miss","key":"user:{int}:profile","ttl":{small}}}',
        '{{"level":"info","msg":"user login","user":"{email}","ip":"{ip}","mfa":{bool}}}',
        '{{"level":"error","msg":"upstream timeout","upstream":"{ipport}","elapsed":"{dur}"}}',
        '{{"level":"debug","msg":"connected to replicas","replicas":"{hostlist}"}}',
    ],
}


@dataclass(frozen=True)
class LabeledLine:
    style: str
    template_id: str
    line: str


def fill_template(template: str, rng: random.Random) -> str:
    """``template`` with each ``{slot}`` filled from its generator (``{{``/``}}`` stay literal braces)."""
    names = [p.split("}")[0] for p in template.replace("{{", "\x00").split("{")[1:]]
    values = {}
    out = template
    # format slot by slot so a slot used twice gets independent values
    for name in names:
        if "\x00" in name or name not in SLOTS:
            continue
        values[name] = SLOTS[name](rng)
        out = out.replace("{" + name + "}", values[name].replace("{", "{{").replace("}", "}}"), 1)
    return out.replace("{{", "{").replace("}}", "}")


def generate_style(style: str, n_lines: int, seed: int = 7) -> list[LabeledLine]:
    """``n_lines`` lines of one style with Zipf-like template frequencies (every template appears)."""
    templates = STYLES[style]
    rng = random.Random(f"{style}:{seed}")
    weights = [1.0 / (rank + 1) ** 0.8 for rank in range(len(templates))]
    order = list(range(len(templates)))
    rng.shuffle(order)
    picks = order + rng.choices(order, weights=weights, k=max(0, n_lines - len(templates)))
    rng.shuffle(picks)
    return [LabeledLine(style, f"{style}:{i}", fill_template(templates[i], rng)) for i in picks[:n_lines]]


def generate_corpora(n_per_style: int = 2000, seed: int = 7, styles: Sequence[str] | None = None) -> dict[str, list[LabeledLine]]:
    return {s: generate_style(s, n_per_style, seed) for s in (styles or sorted(STYLES))}


def exact_groups(predicted: Sequence[str], truth: Sequence[str]) -> tuple[list[list[int]], int, int]:
    """The true groups (their line indexes) that one predicted group holds exactly, the number of
    predicted groups and the number of true groups: what group accuracy and F1 group accuracy count."""
    if len(predicted) != len(truth):
        raise ValueError("predicted and truth must have the same length")
    by_pred: dict[str, list[int]] = {}
    by_true: dict[str, list[int]] = {}
    for i, (p, t) in enumerate(zip(predicted, truth, strict=True)):
        by_pred.setdefault(p, []).append(i)
        by_true.setdefault(t, []).append(i)
    exact = [members for members in by_true.values() if by_pred[predicted[members[0]]] == members]
    return exact, len(by_pred), len(by_true)


def group_accuracy(predicted: Sequence[str], truth: Sequence[str]) -> float:
    """Group Accuracy: a line counts iff the set of lines sharing its predicted group equals the set
    sharing its true template (the LogPAI definition)."""
    exact, _, _ = exact_groups(predicted, truth)
    return sum(map(len, exact)) / len(truth) if truth else 1.0
