"""The unit a number question asks for (a share, money, any amount) and the unit of each number in a line: the
rerank of retrieval and the answerer's typed line prefer a line whose number is in the unit asked."""
import pytest

from models.base import MemoryView
from models.text.relevance import asked_unit, evidence_rerank, number_units, type_bonus


def test_each_number_has_its_unit():
    assert number_units("Gross margin: 62%") == ["share"]
    assert number_units("The margin is sixty two percent.") == ["share"]
    assert number_units("Unit price: 94 euros") == ["money"]
    assert number_units("The budget is $50 million.") == ["money"]
    assert number_units("Budget: 35 million dollars") == ["money"]
    assert number_units("Servers in use: 94") == ["plain"]
    assert number_units("Launch date: June 8") == []  # the day of a date is no amount


def test_the_unit_a_question_asks_for():
    assert asked_unit("What fraction of Heron sales is left as profit after direct costs?") == "share"
    assert asked_unit("What percentage of users came back?") == "share"
    assert asked_unit("How much does a customer pay for one Gazelle?") == "money"
    assert asked_unit("How much money has been set aside for Aurora?") == "money"
    assert asked_unit("How many machines does Iris need?") == ""


def test_a_number_in_another_unit_is_no_answer_to_the_question():
    share, money, plain = "Gross margin: 62%", "Unit price: 94 euros", "Servers in use: 94"
    assert type_bonus("number", money, unit="share") == 0.0
    assert type_bonus("number", share, unit="share") == 1.0
    assert type_bonus("number", plain, unit="share") == 0.5  # a unit may go unsaid
    assert type_bonus("number", share, unit="money") == 0.0
    assert type_bonus("number", money, unit="") == type_bonus("number", share, unit="") == 1.0


def test_the_rerank_puts_the_line_in_the_asked_unit_first():
    """Two clips of one project, equally close in the dense space: the one whose number is a share answers
    'what fraction', the one whose number is a price answers 'how much does one cost'."""
    mems = [MemoryView(1, "m", 36.0, 38.0, 0.5, None, {"ocr": "Plan\nHeron Event Planning\nUnit price: 94 euros"}),
            MemoryView(2, "m", 100.0, 102.0, 0.5, None, {"asr": "The gross margin on Heron is 62%."})]
    frac = evidence_rerank("What fraction of Heron sales is left as profit after direct costs?", mems)
    assert frac[1] > frac[0], frac
    price = evidence_rerank("How much does a customer pay for one Heron?", mems)
    assert price[0] > price[1], price


@pytest.mark.parametrize("line,typed", [
    ("After the tone, say your busy message and then press the pound key.", 1.0),
    ("We meet again tomorrow.", 1.0), ("The review is on June 3.", 1.0), ("Press 1 to accept this recording.", 0.0)])
def test_when_is_answered_by_a_date_or_a_time_relative_to_an_event(line, typed):
    assert type_bonus("date", line) == typed
