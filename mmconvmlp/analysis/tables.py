"""The benchmarks' output: Markdown tables and CSV files."""


def markdown_table(rows, columns):
    """Render ``rows`` (dicts) as a Markdown table with ``columns``.

    ``columns`` is a list of (key, header, format) with format a
    ``str.format`` spec such as ``'{:.1f}'``; missing values print as '-'.
    """
    lines = ['| ' + ' | '.join(h for _, h, _ in columns) + ' |',
             '|' + '---|' * len(columns)]
    for row in rows:
        cells = [fmt.format(row[key]) if row.get(key) is not None else '-'
                 for key, _, fmt in columns]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def write_csv(rows, path):
    """All fields of all rows, one line each."""
    import csv
    keys = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
