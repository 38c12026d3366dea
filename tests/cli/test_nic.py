"""CLI tests for `nitro run --nic` / `--underlay` / `--map` and `nitro net`: bad values are
refused with one clear line before anything starts (see conftest.py's sandbox)."""
import pytest

from test_cli import assert_error


@pytest.mark.parametrize("spec,needles", [
    ("", ["--nic: empty value"]),
    ("vpc=1,,ip=10.0.0.5", ["expected key=value"]),
    ("vpc=1", ["vpc= and ip= are required"]),
    ("ip=10.0.0.5", ["vpc= and ip= are required"]),
    ("vpc=0,ip=10.0.0.5", ["vpc=0", "1 to 16777215"]),
    ("vpc=16777216,ip=10.0.0.5", ["vpc=16777216"]),
    ("vpc=x,ip=10.0.0.5", ["vpc=x"]),
    ("vpc=1,ip=10.0.0", ["ip=10.0.0", "not an IPv4 address"]),
    ("vpc=1,ip=10.0.0.5/8", ["prefix must be 16 to 28"]),
    ("vpc=1,ip=10.0.0.5/29", ["prefix must be 16 to 28"]),
    ("vpc=1,ip=10.0.0.0", ["the network address"]),
    ("vpc=1,ip=10.0.0.1", ["the VPC router's address"]),
    ("vpc=1,ip=10.0.0.2", ["the VPC DNS server's address"]),
    ("vpc=1,ip=10.0.0.3", ["reserved"]),
    ("vpc=1,ip=10.0.0.255", ["the broadcast address"]),
    ("vpc=1,ip=10.0.1.255/23", ["the broadcast address"]),
    ("vpc=1,ip=224.0.0.5", ["not a unicast private address"]),
    ("vpc=1,ip=10.0.0.5,mac=01:00:00:00:00:01", ["mac=01:00:00:00:00:01", "unicast"]),
    ("vpc=1,ip=10.0.0.5,mac=zz", ["mac=zz"]),
    ("vpc=1,ip=10.0.0.5,pps=-1", ["pps=-1"]),
    ("vpc=1,ip=10.0.0.5,bandwidth=1e9", ["bandwidth=1e9"]),
    ("vpc=1,ip=10.0.0.5,speed=10", ["unknown key speed"]),
    ("vpc=1,ip=10.0.0.5,sg=", ["sg= needs a file"]),
    ("vpc=1,ip=10.0.0.5,imds=v1", ["imds=v1", "required, optional or disabled"]),
])
def test_bad_nic_spec(nitro, spec, needles):
    r = nitro("run", "--nic", spec)
    assert_error(r, 2, "nitro: run: ", *needles)


@pytest.mark.parametrize("args,status,needles", [
    (["--user-data", "/nonexistent/ud"], 1, ["--user-data /nonexistent/ud"]),
    (["--ssh-key", "/nonexistent/key"], 1, ["--ssh-key /nonexistent/key"]),
    (["--instance-id", "i-123"], 2, ["--instance-id i-123", "17 hex"]),
    (["--instance-type", "M5 LARGE"], 2, ["--instance-type", "like m5.large"]),
    (["--region", "EU-WEST-1"], 2, ["--region EU-WEST-1", "like eu-west-1"]),
    (["--region", "eu-west-1.evil"], 2, ["--region eu-west-1.evil"]),
    (["--region", "-x"], 2, ["--region -x"]),
    (["--region", ""], 2, ["--region", "like eu-west-1"]),
])
def test_bad_instance_metadata(nitro, args, status, needles):
    r = nitro("run", *args)
    assert_error(r, status, "nitro: run: ", *needles)


def test_nic_missing_value(nitro):
    assert_error(nitro("run", "--nic"), 2, "nitro: run: --nic: missing value")


def test_nic_sg_file_missing(nitro, tmp_path):
    sg = tmp_path / "no-such.sg"
    r = nitro("run", "--nic", f"vpc=1,ip=10.0.0.5,sg={sg}")
    assert_error(r, 1, "nitro: run: ", f"security group file {sg}", "No such file or directory")


def test_same_address_twice(nitro):
    r = nitro("run", "--nic", "vpc=1,ip=10.0.0.5", "--nic", "vpc=1,ip=10.0.0.5/24")
    assert_error(r, 2, "nitro: run: ", "the same VPC address twice")


def test_too_many_nics(nitro):
    args = []
    for i in range(8):
        args += ["--nic", f"vpc=1,ip=10.0.0.{10 + i}"]
    assert_error(nitro("run", *args), 2, "nitro: run: --nic: at most 7 interfaces")


@pytest.mark.parametrize("addr", ["300.1.1.1", "10.0.0.1:70000", "host.example", ":5"])
def test_bad_underlay(nitro, addr):
    assert_error(nitro("run", "--underlay", addr), 2, "nitro: run: --underlay: ", addr)


def test_net_usage(nitro):
    assert_error(nitro("net"), 2, "nitro: net: missing subcommand")
    assert_error(nitro("net", "list"), 2, "nitro: net: unknown subcommand")
    assert_error(nitro("net", "stats", "--vpc", "0"), 2, "nitro: net stats: --vpc 0")
    assert_error(nitro("net", "stats", "--bogus"), 2, "nitro: net stats: --bogus")


def test_net_stats_nothing_running(nitro, tmp_path):
    r = nitro("net", "stats", "--map", str(tmp_path / "empty"))
    assert r.status == 0 and r.out == "", r
    assert "no interfaces" in r.err


def test_vpc_records(sandbox, env, tmp_path):
    """`nitro vpc create|list|delete` (the internet gateway's record): bad input refused
    with one line, a record listed, an interface outside the VPC's CIDR refused."""
    from conftest import TIMEOUT, run_proc
    e = dict(env, NITRO_STATE=str(tmp_path / "state"))

    def nitro(*a):
        return run_proc([sandbox / "bin" / "nitro", *a], e, TIMEOUT)
    assert_error(nitro("vpc", "create", "3"), 2, "nitro: vpc create: ", "--cidr")
    assert_error(nitro("vpc", "create", "0", "--cidr", "10.3.0.0/16"), 2, "nitro: vpc create: ")
    for bad in ("10.3.0.1/16", "10.3.0.0/8", "10.3.0.0/29", "10.3.0.0", "x/16"):
        assert_error(nitro("vpc", "create", "3", "--cidr", bad), 2,
                     "nitro: vpc create: --cidr ", bad)
    assert_error(nitro("vpc", "create", "3", "--cidr", "10.3.0.0/16", "--nat"), 2,
                 "nitro: vpc create: unexpected --nat")
    r = nitro("vpc", "create", "3", "--cidr", "10.3.0.0/16", "--internet-gateway")
    assert r.status == 0 and r.out == "vpc=3 cidr=10.3.0.0/16 igw=1\n", r
    assert_error(nitro("vpc", "create", "3", "--cidr", "10.3.0.0/16"), 1,
                 "nitro: vpc create: VPC 3 exists")
    r = nitro("vpc", "list")
    assert r.status == 0 and r.out == "vpc=3 cidr=10.3.0.0/16 igw=1\n", r
    assert_error(nitro("run", "--nic", "vpc=3,ip=10.4.0.5/24"), 1,
                 "nitro: run: ", "not inside VPC 3's CIDR 10.3.0.0/16")
    assert_error(nitro("run", "--nic", "vpc=3,ip=10.3.0.5/15"), 2, "nitro: run: ")
    # a record edited by hand into something else is refused, not guessed at
    (tmp_path / "state" / "vpcs" / "3").write_text("vpc=3 cidr=10.3.0.0/16 igw=yes\n")
    assert_error(nitro("run", "--nic", "vpc=3,ip=10.3.0.5/24"), 1, "nitro: run: ", "malformed")
    r = nitro("vpc", "delete", "3")
    assert r.status == 0, r
    assert_error(nitro("vpc", "delete", "3"), 1, "nitro: vpc delete: 3")
    assert nitro("vpc", "list").out == ""
