"""escape_engine.evidence: an evidence event's index, splunk_server and _cd, carried as one reference and written as
escape_evidence beside escape_evidence_cd."""
from escape_engine.evidence import address, cd_of, reference, reference_of, row_fields


def test_an_alert_row_names_each_event_by_index_peer_and_cd_aligned_with_its_cd() -> None:
    refs = [reference({"index": "main", "splunk_server": "idx1", "_cd": "12:345"}),
            reference({"index": "k8s", "splunk_server": "idx2", "_cd": "12:345"}),  # the same _cd, another event
            reference({"index": "main", "splunk_server": "idx1", "_cd": "12:345"}),  # the first one again
            reference({"index": "main", "splunk_server": "idx1"})]                  # no _cd: nothing to find
    assert row_fields(refs) == {
        "escape_evidence_cd": ["12:345", "12:345"],
        "escape_evidence": ["index=main splunk_server=idx1 _cd=12:345", "index=k8s splunk_server=idx2 _cd=12:345"]}


def test_parts_splunk_did_not_give_are_left_out_and_odd_values_quoted() -> None:
    assert address(reference({"_cd": "0:7"})) == "_cd=0:7" == address("0:7")
    assert address(reference_of('we "ird', "idx 1", "1:2")) == 'index="we \\"ird" splunk_server="idx 1" _cd=1:2'
    assert cd_of(reference_of("main", "idx1", "1:2")) == "1:2" == cd_of("1:2")
