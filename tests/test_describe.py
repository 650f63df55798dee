"""The describe engine's filters and paging, on plain EC2-shaped items."""

import pytest

from ec2bridge.describe import PageTokens, Paging, apply_filters, check_max_results, compile_filters, paginate
from ec2bridge.errors import EC2Error

ITEMS = [
    {"InstanceId": "i-1", "State": {"Name": "running"}, "EbsOptimized": False,
     "BlockDeviceMappings": [{"DeviceName": "/dev/sda1"}, {"DeviceName": "/dev/sdb"}],
     "Tags": [{"Key": "Name", "Value": "web-1"}, {"Key": "env", "Value": "prod"}]},
    {"InstanceId": "i-2", "State": {"Name": "stopped"}, "EbsOptimized": True,
     "BlockDeviceMappings": [{"DeviceName": "/dev/sda1"}], "Tags": [{"Key": "Name", "Value": "db*1"}]},
    {"InstanceId": "i-3", "State": {"Name": "running"}, "EbsOptimized": False},
]
FILTERS = {"instance-state-name": "State.Name", "block-device-mapping.device-name": "BlockDeviceMappings.DeviceName",
           "ebs-optimized": "EbsOptimized", "instance-id": "InstanceId"}


def ids(filters):
    return [i["InstanceId"] for i in apply_filters(ITEMS, compile_filters(filters, FILTERS, taggable=True))]


@pytest.mark.parametrize("filters, expected", [
    ([{"Name": "instance-state-name", "Values": ["running"]}], ["i-1", "i-3"]),
    ([{"Name": "instance-state-name", "Values": ["stopped", "running"]}], ["i-1", "i-2", "i-3"]),
    ([{"Name": "instance-state-name", "Values": ["run*"]}, {"Name": "instance-id", "Values": ["i-?"]}], ["i-1", "i-3"]),
    ([{"Name": "block-device-mapping.device-name", "Values": ["/dev/sdb"]}], ["i-1"]),
    ([{"Name": "ebs-optimized", "Values": ["true"]}], ["i-2"]),
    ([{"Name": "tag:Name", "Values": ["web-*"]}], ["i-1"]),
    ([{"Name": "tag:Name", "Values": ["db\\*1"]}], ["i-2"]),
    ([{"Name": "tag:Name", "Values": ["db\\*2"]}], []),
    ([{"Name": "tag-key", "Values": ["env"]}], ["i-1"]),
    ([{"Name": "tag-value", "Values": ["prod", "db*"]}], ["i-1", "i-2"]),
    ([], ["i-1", "i-2", "i-3"]),
])
def test_filters(filters, expected):
    assert ids(filters) == expected


def test_unknown_filter_is_invalid_parameter_value():
    with pytest.raises(EC2Error) as caught:
        compile_filters([{"Name": "no-such-filter", "Values": ["x"]}], FILTERS, taggable=True)
    assert caught.value.code == "InvalidParameterValue" and "no-such-filter" in caught.value.message
    with pytest.raises(EC2Error):
        compile_filters([{"Name": "tag:Name", "Values": ["x"]}], FILTERS, taggable=False)


def test_paging_walks_every_item_once_and_survives_inserts():
    tokens = PageTokens(b"k" * 32)
    items = [{"Id": f"id-{n:03d}"} for n in range(12)]
    seen, after = [], None
    while True:
        page, token = paginate(items, lambda i: i["Id"], 5, after, tokens, "DescribeThings")
        seen += [i["Id"] for i in page]
        if token is None:
            break
        after = tokens.read("DescribeThings", token)
        items.insert(0, {"Id": "id-000a"})  # an item inserted before the cursor does not shift pages
    assert seen == [f"id-{n:03d}" for n in range(12)]


def test_tampered_or_foreign_tokens_are_rejected():
    tokens = PageTokens(b"k" * 32)
    token = tokens.issue("DescribeThings", "id-004")
    assert tokens.read("DescribeThings", token) == "id-004"
    for bad in (token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1], "garbage!", "",
                PageTokens(b"x" * 32).issue("DescribeThings", "id-004")):
        with pytest.raises(EC2Error):
            tokens.read("DescribeThings", bad)
    with pytest.raises(EC2Error):
        tokens.read("DescribeOther", token)


def test_max_results_bounds():
    assert check_max_results(None, None, "A") is None
    assert check_max_results(5, Paging(5, 1000), "A") == 5
    for bad in (4, 1001):
        with pytest.raises(EC2Error):
            check_max_results(bad, Paging(5, 1000), "A")
    with pytest.raises(EC2Error):
        check_max_results(10, None, "A")
