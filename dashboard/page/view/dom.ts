/** The element with this id, of the expected type; throws when the page markup lacks it. */
export function byId<T extends Element>(doc: Document, id: string, type: new () => T): T {
  const element = doc.getElementById(id);
  if (!(element instanceof type)) {
    throw new Error(`the page has no ${type.name} with id "${id}": index.html and the code disagree`);
  }
  return element;
}

/** The first element matching `selector` under `root`, of the expected type; throws otherwise. */
export function query<T extends Element>(root: ParentNode, selector: string, type: new () => T): T {
  const element = root.querySelector(selector);
  if (!(element instanceof type)) {
    throw new Error(`the page has no ${type.name} matching "${selector}": index.html and the code disagree`);
  }
  return element;
}

/** Sets text only when it changed, so unchanged cells cost no layout. */
export function setText(element: Element, text: string): void {
  if (element.textContent !== text) element.textContent = text;
}
