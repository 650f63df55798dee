"""The answer memo's bookkeeping: one basis per key, request ids swapped, bytes bounded.
(What may be kept and when it is a miss is tested end to end in tests/e2e/test_answer_memo.py.)"""

from __future__ import annotations

from ec2bridge.answer_memo import AnswerMemo, answer_key

REQUEST_ID = "11111111-2222-4333-8444-555555555555"


def answer(text: str) -> bytes:
    return f"<R><requestId>{REQUEST_ID}</requestId>{text}</R>".encode()


def test_a_kept_answer_is_given_with_the_new_request_id_on_the_same_basis_only():
    memo = AnswerMemo()
    memo.keep(("k",), "basis-1", answer("body"), REQUEST_ID)
    assert memo.known(("k",), "basis-2") is None
    assert memo.known(("k",), "basis-1") is None  # a miss drops the stale answer
    memo.keep(("k",), "basis-2", answer("body"), REQUEST_ID)
    pieces = memo.known(("k",), "basis-2")
    assert b"new-id".join(pieces) == b"<R><requestId>new-id</requestId>body</R>"
    assert memo.hits == 1


def test_the_least_recently_used_answers_go_first_within_the_byte_budget():
    size = len(answer("x" * 100)) - len(REQUEST_ID)
    memo = AnswerMemo(max_bytes=3 * size)
    for name in "abc":
        memo.keep((name,), 1, answer("x" * 100), REQUEST_ID)
    assert memo.known(("a",), 1) is not None  # a is now the most recently used
    memo.keep(("d",), 1, answer("x" * 100), REQUEST_ID)
    assert [memo.known((name,), 1) is not None for name in "abcd"] == [True, False, True, True]
    memo.keep(("huge",), 1, answer("x" * 1000), REQUEST_ID)
    assert memo.known(("huge",), 1) is None and len(memo) == 3


def test_the_key_ignores_how_the_request_was_written_but_not_what_it_asks():
    one = answer_key("DescribeInstances", "AK", "2016-11-15", {"MaxResults": 5, "Filters": [{"Name": "a"}]})
    same = answer_key("DescribeInstances", "AK", "2016-11-15", {"Filters": [{"Name": "a"}], "MaxResults": 5})
    assert one == same
    assert one != answer_key("DescribeInstances", "AK2", "2016-11-15", {"MaxResults": 5, "Filters": [{"Name": "a"}]})
    assert one != answer_key("DescribeInstances", "AK", "2016-11-15", {"MaxResults": 6, "Filters": [{"Name": "a"}]})
