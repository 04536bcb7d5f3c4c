"""Reference graphs between updates: cycles, supersedence reach and bundle order (pure).

Supersedence, prerequisites and bundles are edges between update ids taken from publishers'
manifests, so they may form cycles or point at ids that are not candidates. Every function
here is iterative (no recursion, so a 10,000-long chain cannot exhaust the stack) and runs in
O(nodes + edges).

Invariant: the results depend only on the node set and the edge lists, never on the order in
which nodes are given; callers pass nodes sorted by id so that messages are stable.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence

Edges = Mapping[str, Sequence[str]]
"""Adjacency lists: ``edges[a]`` are the ids ``a`` points at, every one a node of the graph."""


def strongly_connected(nodes: Sequence[str], edges: Edges) -> list[list[str]]:
    """The cyclic strongly connected components (size > 1, or one node with a self-edge).

    Tarjan's algorithm with an explicit stack. Each component is sorted; components are
    ordered by their smallest id.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index or not edges.get(root):
            continue  # a node without out-edges is never on a cycle
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, next_child = work.pop()
            if next_child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            children = edges.get(node, ())
            if next_child < len(children):
                work.append((node, next_child + 1))
                child = children[next_child]
                if child not in index and edges.get(child):
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            # All children done: close the component if ``node`` is its root.
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in edges.get(node, ()):
                    found.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    found.sort(key=lambda c: c[0])
    return found


def cycle_path(component: Sequence[str], edges: Edges) -> list[str]:
    """A shortest cycle through the smallest id of ``component``, closed: ``[a, b, a]``."""
    members = set(component)
    start = component[0]
    parent: dict[str, str] = {}
    queue = deque([start])
    seen = {start}
    while queue:
        node = queue.popleft()
        for child in edges.get(node, ()):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if child in members and child not in seen:
                seen.add(child)
                parent[child] = node
                queue.append(child)
    raise AssertionError("a strongly connected component always has a cycle")  # pragma: no cover


def describe_cycles(
    label: str, nodes: Sequence[str], edges: Edges, consequence: str
) -> tuple[list[list[str]], list[str]]:
    """Find the cyclic components of a graph and one warning per component.

    The warning shows one cycle (``supersedence cycle: a -> b -> a (ignored)``) and, when the
    component holds more ids than that cycle, names the others too, so that every id that lies
    on some cycle appears in a warning.

    Returns:
        The components, and the warnings.
    """
    components = strongly_connected(nodes, edges)
    warnings = []
    for component in components:
        path = cycle_path(component, edges)
        text = f"{label} cycle: {' -> '.join(path)} ({consequence})"
        others = sorted(set(component) - set(path))
        if others:
            text += f"; the same cycle also involves {', '.join(others)}"
        warnings.append(text)
    return components, warnings


def without_cycle_edges(edges: Edges, components: Iterable[Sequence[str]]) -> Edges:
    """``edges`` minus every edge between two ids of the same cyclic component."""
    component_of = {node: i for i, component in enumerate(components) for node in component}
    if not component_of:
        return edges
    kept: dict[str, Sequence[str]] = dict(edges)
    for node in component_of:
        children = edges.get(node, ())
        mine = component_of[node]
        kept[node] = [c for c in children if component_of.get(c) != mine]
    return kept


def reached_from(sources: Iterable[str], edges: Edges) -> set[str]:
    """Every id reachable from ``sources`` over one edge or more (breadth-first)."""
    reached: set[str] = set()
    queue = deque(child for source in sources for child in edges.get(source, ()))
    while queue:
        node = queue.popleft()
        if node in reached:
            continue
        reached.add(node)
        queue.extend(edges.get(node, ()))
    return reached


def children_first(nodes: Sequence[str], edges: Edges) -> list[str]:
    """Nodes of an acyclic graph ordered so that every node comes after all it points at."""
    order: list[str] = []
    done: set[str] = set()
    for root in nodes:
        if root in done:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        done.add(root)
        while work:
            node, next_child = work.pop()
            children = edges.get(node, ())
            if next_child < len(children):
                work.append((node, next_child + 1))
                child = children[next_child]
                if child not in done:
                    done.add(child)
                    work.append((child, 0))
            else:
                order.append(node)
    return order
