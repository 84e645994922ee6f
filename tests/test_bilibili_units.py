"""Pure units: WBI vectors, correspondPath, cookie parsing, Credentials secrecy."""

from __future__ import annotations

import re

from cryptography.hazmat.primitives.asymmetric import rsa

from bilibili import Credentials, VideoInfo
from bilibili.login import cookies_from_url, parse_set_cookies
from bilibili.refresh import OAEP, correspond_path, parse_refresh_csrf
from bilibili.wbi import key_from_url, mixin_key, sign

SESS = "0a1b2c3d%2C1734000000%2C6b8e1%2A41CjBxyz"


def test_wbi_mixin_vector():
    assert (
        mixin_key("7cd084941338484aae1ad9425b84077c", "4932caff0ff746eab6f01bf08b70ac45")
        == "ea1db124af3c7062474693fa704f4ff8"
    )


def test_wbi_sign_vector():
    out = sign({"foo": "114", "bar": "514", "zab": 1919810}, "ea1db124af3c7062474693fa704f4ff8", wts=1702204169)
    assert out["wts"] == "1702204169"
    assert out["w_rid"] == "8f6f2b5b3d485fe1886cec6a0be8c5d4"


def test_wbi_strips_and_encodes_like_encodeuricomponent():
    a = sign({"q": "a b/c!('*)"}, "x" * 32, wts=1)
    b = sign({"q": "a b/c"}, "x" * 32, wts=1)
    assert a["q"] == "a b/c" and a["w_rid"] == b["w_rid"]
    assert (
        key_from_url("https://i0.hdslb.com/bfs/wbi/7cd084941338484aae1ad9425b84077c.png")
        == "7cd084941338484aae1ad9425b84077c"
    )


def test_correspond_path_shape_and_round_trip():
    path = correspond_path(1684466082562)
    assert re.fullmatch(r"[0-9a-f]{256}", path)
    assert correspond_path(1684466082562) != path  # OAEP is randomised
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    from cryptography.hazmat.primitives import serialization

    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    path = correspond_path(1700000000123, pem)
    assert re.fullmatch(r"[0-9a-f]{256}", path)
    assert key.decrypt(bytes.fromhex(path), OAEP) == b"refresh_1700000000123"


def test_refresh_csrf_parse():
    assert (
        parse_refresh_csrf('<html><div id="1-name">b0cc8411ded2f9db2cff2edb3123acac</div></html>')
        == "b0cc8411ded2f9db2cff2edb3123acac"
    )
    assert parse_refresh_csrf("<html></html>") is None


def test_cookies_kept_verbatim():
    got = parse_set_cookies([f"SESSDATA={SESS}; Path=/; Domain=bilibili.com; HttpOnly; Secure", "bili_jct=abc; Path=/"])
    assert got == {"SESSDATA": SESS, "bili_jct": "abc"}
    url = f"https://passport.biligame.com/crossDomain?DedeUserID=7&DedeUserID__ckMd5=f&Expires=1&SESSDATA={SESS}&bili_jct=j&gourl=https%3A%2F%2Fpassport.bilibili.com"
    got = cookies_from_url(url)
    assert got["SESSDATA"] == SESS and got["DedeUserID"] == "7" and "gourl" not in got and "Expires" not in got


def test_credentials_repr_hides_secrets_and_round_trips():
    c = Credentials(
        sessdata=SESS,
        bili_jct="csrfsecret",
        dedeuserid="42",
        refresh_token="rtsecret",
        buvid3="b3",
        extra={"sid": "s1"},
    )
    for text in (repr(c), str(c), f"{c}", repr([c])):
        assert SESS not in text and "csrfsecret" not in text and "rtsecret" not in text
        assert "42" in text
    assert Credentials.from_dict(c.to_dict()) == c
    assert c.to_dict()["SESSDATA"] == SESS
    assert "refresh_token" not in c.cookies()


def test_video_info_normalises_cover():
    v = VideoInfo.from_archive(
        {
            "bvid": "BV1",
            "aid": 1,
            "pic": "http://i0.hdslb.com/bfs/a.jpg",
            "owner": {"mid": 2, "name": "n"},
            "stat": {"fav": 3},
        }
    )
    assert v.cover == "https://i0.hdslb.com/bfs/a.jpg" and v.favorite == 3 and v.tags is None
