"""The shared gate predicates of `contracts.gates`, on documents of their own."""

from fp_platform.contracts.gates import none_listed, workers_green


def test_none_listed_passes_on_an_empty_list_and_names_what_it_lists():
    sealed = none_listed("problems", lambda d: f"sealed {d['fingerprint']}")
    assert sealed({"problems": [], "fingerprint": "abc"}) == (True, "sealed abc")
    assert sealed({"problems": ["a missing", "b short"]}) == (False, "a missing; b short")
    assert none_listed("leakage", "no leakage")({"leakage": []}) == (True, "no leakage")


def test_workers_green_judges_the_unhealthy_list():
    green = workers_green("DF GREEN")
    assert green({"unhealthy": []}) == (True, "DF GREEN")
    assert green({"unhealthy": ["df: RED"]}) == (False, "df: RED")
