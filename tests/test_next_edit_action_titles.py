"""Action titles name what the edit does, even for text a menu cannot show as is: invisible characters, and long
texts that differ only in their middle."""

from __future__ import annotations

from lsp_server.services.next_edit_actions import action_title, one_line


def test_invisible_characters_are_written_out_not_dropped():
    """Dropped, a no-break space replaced by a space read as inserting a space where nothing was, and a zero-width
    space deleted from a word read as replacing the word with itself."""
    assert action_title("\xa0", " ", 1, 1) == "Tact: next edit — replace `\\u00a0` with ` ` (line 2)"
    assert action_title("a\u200bb", "ab", 0, 0) == "Tact: next edit — replace `a\\u200bb` with `ab` (line 1)"
    assert action_title("\ufeff", "", 0, 0) == "Tact: next edit — delete `\\ufeff` (line 1)"
    # a bidirectional override would reorder the rest of the title on screen
    assert one_line("x\u202ey") == "x\\u202ey"
    assert one_line("\U000e0001") == "\\U000e0001"  # past the BMP: eight hex digits


def test_a_cut_never_splits_an_escape():
    """Cut in the middle of ``\\u00a0`` or ``\\n``, the title would show a broken escape."""
    for text in ("ab" + "\xa0" * 12 + "cd", "a" + "\n" * 20, "\n" * 40 + "a"):
        cut = one_line(text, 21)
        assert len(cut) <= 21, cut
        head, tail = cut.split("…")
        assert not head.endswith("\\") and not head.endswith("\\u") and not tail.startswith(("n", "u", "0")), cut


def test_long_texts_that_differ_only_in_the_middle_get_titles_that_differ():
    """Both cut to the same head and tail, the title read as replacing a text with itself."""
    old = "load_user_profile_with_alpha_settings_from_the_cache"
    new = "load_user_profile_with_gamma_settings_from_the_cache"
    title = action_title(old, new, 3, 3)
    shown_old, shown_new = title.split("`")[1], title.split("`")[3]
    assert shown_old != shown_new, title
    assert "alpha" in shown_old and "gamma" in shown_new, title
    assert len(shown_old) <= 30 and len(shown_new) <= 30, title
