// A control that takes the focus inside a box that scrolls sideways (the week's grid, wide
// tables on a phone) is brought whole into view: Chromium leaves one that is already partly
// visible where it is, its focus ring cut by the box's edge (WCAG 2.4.7). Without this script
// nothing breaks; the box still scrolls by hand.
document.addEventListener("focusin", (event) => {
  const target = event.target;
  if (target instanceof Element && target.closest(".scroll")) {
    target.scrollIntoView({ block: "nearest", inline: "nearest" });
  }
});
