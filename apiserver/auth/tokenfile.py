"""Static bearer tokens from kube-apiserver's ``--token-auth-file`` (after apiserver's tokenfile.go).

Data flow: the CSV file, read once at start-up -> ``parse_token_file`` -> token -> ``UserInfo``.
Each line is ``token,user,uid[,"group1,group2"]`` (Go's encoding/csv: quoted fields, leading
spaces trimmed, blank lines skipped); fewer than three columns is a start-up error naming the
line; an empty token is skipped and a repeated token's last line wins, as Kubernetes does.
Pure except for reading the file in ``load``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from machinery.userinfo import UserInfo


class TokenFileError(ValueError):
    pass


def parse_token_file(text: str, *, path: str = "") -> dict[str, UserInfo]:
    tokens: dict[str, UserInfo] = {}
    reader = csv.reader(io.StringIO(text), skipinitialspace=True, strict=True)
    try:
        for record in reader:
            if not record or record == [""]:
                continue
            if len(record) < 3:
                raise TokenFileError(f"token file '{path}' line {reader.line_num}: must have at least 3 columns "
                                     f"(token, user name, user uid), found {len(record)}")
            token, name, uid = record[0], record[1], record[2]
            if not token:
                continue
            groups = tuple(record[3].split(",")) if len(record) >= 4 and record[3] else ()
            tokens[token] = UserInfo(name=name, uid=uid, groups=groups)
    except csv.Error as e:
        raise TokenFileError(f"token file '{path}' line {reader.line_num}: {e}") from None
    return tokens


class TokenFileAuthenticator:
    def __init__(self, tokens: dict[str, UserInfo]) -> None:
        self.tokens = tokens

    @classmethod
    def load(cls, path: str) -> "TokenFileAuthenticator":
        return cls(parse_token_file(Path(path).read_text(), path=path))

    async def authenticate_token(self, token: str) -> UserInfo | None:
        return self.tokens.get(token)  # a map look-up, as Kubernetes' tokenfile authenticator


__all__ = ["TokenFileAuthenticator", "TokenFileError", "parse_token_file"]
