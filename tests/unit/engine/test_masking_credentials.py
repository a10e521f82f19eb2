"""Credential classes in free text: masked in samples (mask_text) AND in mined templates.

Each row is a line holding a secret value; the secret must vanish from the masked sample and from
the template the miner gives the line, where it must stand as a named mask (``<SECRET>`` ...), not
as a partly generalised word such as ``CurlUPw<NUM>``. The negative rows must stay as they are.
"""

from __future__ import annotations

import pytest

from airflow_obs_provider.engine.log_mining.miner import PatternMiner
from airflow_obs_provider.engine.masking import SECRET, mask_text

# (line, secret value) -- the value is chosen so that no mask other than a secret one could hide it
CREDENTIAL_LINES = [
    # user:password@ in URLs of any scheme, empty user, '/' and '@' inside the password
    ("cache at redis://:RedisPw7x@cache:6379/0 unreachable", "RedisPw7x"),
    ("rediss://default:RedisPw7x@cache.internal:6380 timeout", "RedisPw7x"),
    ("dsn postgres://u:pa/ssWd9@host/db refused", "pa/ssWd9"),
    ("dsn postgresql://app:p@ssWd9@db.internal:5432/orders refused", "p@ssWd9"),
    ("broker amqp://guest:AmqpPw4z@rabbit:5672/vhost closed", "AmqpPw4z"),
    ("mongo mongodb+srv://svc:MongoPw3q@cluster0.abc.mongodb.net/db?retryWrites=true up", "MongoPw3q"),
    ("fetch https://deploy:HttpsPw2k@git.example.com/repo.git failed", "HttpsPw2k"),
    ("mysql://root:MyPw8v@10.0.0.5:3306/shop lost", "MyPw8v"),
    ("ftp://anon:FtpPw6y@files.example.org/pub listed", "FtpPw6y"),
    # password options of common clients
    ("exec mysql -uroot -pMysqlPw5t -h db shop", "MysqlPw5t"),
    ("exec mysql -u root -p MysqlPw5t shop", "MysqlPw5t"),
    ("exec mysqldump --user=root --password=DumpPw1r shop", "DumpPw1r"),
    ("exec mysql --password DumpPw1r shop", "DumpPw1r"),
    ("exec psql --password PsqlPw2e -h db", "PsqlPw2e"),
    ("exec curl -u admin:CurlUPw1 https://api.example.com/x", "CurlUPw1"),
    ("exec curl --user admin:CurlUPw1 https://api.example.com/x", "CurlUPw1"),
    ("exec curl -uadmin:CurlUPw1 https://api.example.com/x", "CurlUPw1"),
    ("exec sshpass -p SshPassPw3 ssh deploy@web1", "SshPassPw3"),
    ("exec sshpass -pSshPassPw3 ssh deploy@web1", "SshPassPw3"),
    ("exec redis-cli -h cache -a RedisCliPw4 ping", "RedisCliPw4"),
    ("exec ldapsearch -x -D cn=admin -w LdapPw5w -b dc=x", "LdapPw5w"),
    ("exec smbclient //fs/share -U backup%SmbPw6s", "SmbPw6s"),
    ("exec unzip -P ZipPw7z archive.zip", "ZipPw7z"),
    ("exec deploy --token TokFlag8 --env prod", "TokFlag8"),
    ("exec deploy --api-key KeyFlag9 --env prod", "KeyFlag9"),
    ("exec vault login -method=userpass password=VaultPw1 ok", "VaultPw1"),
    ("exec openssl enc -pass pass:OsslPw2 -in f", "OsslPw2"),
    ("exec client --client-secret 'Quoted Pw3' --x", "Quoted Pw3"),
    # webhook and API URLs that carry a token
    ("POST https://hooks.slack.com/services/T0ABCDEF1/B0ABCDEF2/SlackTok3nXYZ12 ok", "SlackTok3nXYZ12"),
    ("POST https://discord.com/api/webhooks/123456789/DiscTok3n-abc_XYZ ok", "DiscTok3n-abc_XYZ"),
    ("POST https://acme.webhook.office.com/webhookb2/TeamsTok3n@x/IncomingWebhook/abc ok", "TeamsTok3n"),
    ("POST https://api.telegram.org/bot123456:TgTok3nABC/sendMessage ok", "TgTok3nABC"),
    ("GET https://api.example.com/v1/items?token=QueryTok3n&page=2 200", "QueryTok3n"),
    ("GET https://api.example.com/v1/items?page=2&access_token=AccTok3n 200", "AccTok3n"),
    ("GET https://api.example.com/v1/items?api_key=ApiKeyVal3&x=1 200", "ApiKeyVal3"),
    ("GET https://maps.example.com/geo?key=MapsKeyVal3 200", "MapsKeyVal3"),
    ("GET https://acct.blob.core.windows.net/c/f?sv=2022-11-02&sig=SasSig3%2Bx%3D&se=2026 200", "SasSig3"),
    # key=value: the value runs to its delimiter
    ("login password=hun&Tail done", "hun&Tail"),
    ("login password=hun&Tail&user=bob done", "hun&Tail"),
    ("conn host=db port=5432 password=LibpqPw4 dbname=x", "LibpqPw4"),
    ('cfg {"db_password": "JsonPw5"} loaded', "JsonPw5"),
    ("env DB_PASSWD=EnvPw6 started", "EnvPw6"),
    ("env MYSQL_PWD=EnvPw7 started", "EnvPw7"),
    ("auth token: TokColon8 accepted", "TokColon8"),
    # prose
    ("the admin password is ProsePw1", "ProsePw1"),
    ("the admin password is: ProsePw1", "ProsePw1"),
    ("new password set to ProsePw2 for bob", "ProsePw2"),
    ("password was changed to ProsePw3.", "ProsePw3"),
    ("login with pass ProsePw4 ok", "ProsePw4"),
    ("logged in using password ProsePw5 today", "ProsePw5"),
    ("authenticated with token ProseTok6", "ProseTok6"),
    ("the api key is ProseKey7", "ProseKey7"),
    ("use API key ProseKey8 for requests", "ProseKey8"),
    ("the secret is ProseSec9", "ProseSec9"),
    ("pwd: ProsePwd1 given", "ProsePwd1"),
]

LEFT_ALONE = [
    "password changed successfully",
    "password is incorrect for user bob",
    "Failed password for invalid user admin from 10.0.0.1 port 22 ssh2",
    "Accepted password for root from 10.0.0.2 port 22 ssh2",
    "rate limited by the token bucket",
    "token bucket refilled",
    "42 tests passed",
    "tests_passed=42 failed=0",
    "author=bob committed",
    "login with password authentication enabled",
    "GET http://example.com:8080/a/b?page=2 200",
    "docker run -u 1000:1000 app",
    "ssh -p 2222 deploy@web1",
    "tar -pxf backup.tar",
    "psql -p 5432 -h db",
    "the secret sauce is ready",
    "git hook /repo/.git/hooks/pre-commit ran",
]


def _template_of(line: str) -> str:
    miner = PatternMiner()
    (fp,) = miner.fingerprint_batch([line])
    return miner.template(fp)


@pytest.mark.parametrize(("line", "secret"), CREDENTIAL_LINES)
def test_the_secret_leaves_the_sample(line: str, secret: str) -> None:
    masked = mask_text(line)
    assert secret not in masked
    assert "<" in masked  # something says a value was removed


@pytest.mark.parametrize(("line", "secret"), CREDENTIAL_LINES)
def test_the_secret_leaves_the_template_as_a_named_mask(line: str, secret: str) -> None:
    template = _template_of(line)
    # no piece of the secret (the digits become <NUM> on their own, so look at the letters)
    letters = "".join(c if c.isalpha() else " " for c in secret).split()
    assert not any(word in template for word in letters if len(word) >= 3), template


def test_curl_user_template_names_the_secret() -> None:
    # (the miner joins neighbouring variables into one <*>: a flag keeps them apart here)
    assert _template_of("curl -u admin:CurlUPw1 -s https://api.example.com/x") == f"curl -u admin:{SECRET} -s <URL>"


@pytest.mark.parametrize("line", LEFT_ALONE)
def test_ordinary_lines_are_left_alone(line: str) -> None:
    assert mask_text(line) == line


@pytest.mark.parametrize(("line", "secret"), CREDENTIAL_LINES)
def test_masking_a_masked_line_changes_nothing(line: str, secret: str) -> None:
    once = mask_text(line)
    assert mask_text(once) == once
