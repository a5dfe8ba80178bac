"""Plain-text tables shared by the reports and the command line."""


def format_table(rows, columns, floatfmt="{:.6g}"):
    """A plain-text table of dict rows."""
    def cell(v):
        return floatfmt.format(v) if isinstance(v, float) else str(v)

    body = [[cell(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(b[i]) for b in body)) if body else len(c)
              for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(lines)


def wrap_words(text, width=100, indent="  "):
    """``text`` on lines of at most ``width`` characters, broken between words only (a path or
    a tensor name is never cut), continuation lines indented by ``indent``.

    A word longer than a continuation line's room that is a label ``file['name']`` breaks
    before its ``[`` (no space added), so the name stays whole on the next line; a word still
    longer than the line stands alone on its own line, uncut (the only lines over ``width``).

    Examples
    --------
    >>> for line in wrap_words("pair: " + "d/" * 20 + "a.st['blk.0.attn_q.weight'] and b", 50):
    ...     print(line)
    pair: d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/a.st
      ['blk.0.attn_q.weight'] and b
    """
    lead = text[:len(text) - len(text.lstrip(" "))]
    pieces = []  # (token, separator before it)
    for word in text.split():
        cut = word.find("['")
        if len(word) > width - len(indent) and cut > 0:
            pieces += [(word[:cut], " "), (word[cut:], "")]
        else:
            pieces.append((word, " "))
    lines, cur = [], None
    for tok, sep in pieces:
        if cur is None:
            cur = lead + tok
        elif len(cur) + len(sep) + len(tok) <= width:
            cur += sep + tok
        else:
            lines.append(cur)
            cur = indent + tok
    return lines + [cur] if cur is not None else [lead.rstrip()]
