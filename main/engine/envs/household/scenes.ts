// The household's furniture and objects, per room type, in ALFWorld's vocabulary (ALFRED's
// receptacle and object class names, lower-cased and unspaced as its TextWorld games write them).
// A scene is one room, as every ALFWorld game is. Which objects can be cleaned, heated and cooled
// follows ALFWorld's task families: clean at a sink, heat in a microwave, cool in a fridge.

export type RoomType = 'kitchen' | 'bathroom' | 'bedroom' | 'livingroom';

export interface ReceptacleKind {
  kind: string;
  /** Has a door or a lid: closed at the start, opened to see or reach what is inside. */
  openable: boolean;
  /** Where the goal's "in" or "on" comes from ("put a mug in cabinet", "on countertop"). */
  preposition: 'in' | 'on';
  /** How many of it a room may have (cabinet 1..n). */
  max: number;
  /** An appliance that changes what is held: a sink cleans, a microwave heats, a fridge cools. */
  tool?: 'clean' | 'heat' | 'cool';
}

export interface ObjectKind {
  kind: string;
  /** Receptacle kinds it may start in. */
  startsIn: string[];
  clean?: boolean;
  heat?: boolean;
  cool?: boolean;
}

export interface RoomSpec {
  receptacles: ReceptacleKind[];
  objects: ObjectKind[];
}

const r = (kind: string, openable: boolean, preposition: 'in' | 'on', max: number, tool?: ReceptacleKind['tool']): ReceptacleKind => ({
  kind,
  openable,
  preposition,
  max,
  ...(tool ? { tool } : {}),
});

export const ROOMS: Record<RoomType, RoomSpec> = {
  kitchen: {
    receptacles: [
      r('cabinet', true, 'in', 6),
      r('countertop', false, 'on', 3),
      r('drawer', true, 'in', 4),
      r('fridge', true, 'in', 1, 'cool'),
      r('microwave', true, 'in', 1, 'heat'),
      r('sinkbasin', false, 'in', 1, 'clean'),
      r('coffeemachine', false, 'in', 1),
      r('diningtable', false, 'on', 1),
      r('shelf', false, 'on', 3),
      r('garbagecan', false, 'in', 1),
      r('stoveburner', false, 'on', 4),
      r('toaster', false, 'in', 1),
    ],
    objects: [
      { kind: 'mug', startsIn: ['cabinet', 'countertop', 'diningtable', 'shelf', 'sinkbasin', 'coffeemachine'], clean: true, heat: true, cool: true },
      { kind: 'apple', startsIn: ['countertop', 'diningtable', 'fridge', 'garbagecan'], clean: true, heat: true, cool: true },
      { kind: 'egg', startsIn: ['countertop', 'fridge', 'diningtable', 'garbagecan'], heat: true, cool: true },
      { kind: 'potato', startsIn: ['countertop', 'fridge', 'diningtable', 'garbagecan'], clean: true, heat: true, cool: true },
      { kind: 'tomato', startsIn: ['countertop', 'fridge', 'diningtable', 'sinkbasin'], clean: true, heat: true, cool: true },
      { kind: 'lettuce', startsIn: ['countertop', 'fridge', 'diningtable'], clean: true, cool: true },
      { kind: 'bread', startsIn: ['countertop', 'diningtable', 'fridge'], heat: true, cool: true },
      { kind: 'plate', startsIn: ['cabinet', 'countertop', 'diningtable', 'shelf'], clean: true, heat: true, cool: true },
      { kind: 'bowl', startsIn: ['cabinet', 'countertop', 'diningtable', 'shelf', 'fridge'], clean: true, cool: true },
      { kind: 'cup', startsIn: ['cabinet', 'countertop', 'diningtable', 'fridge', 'sinkbasin'], clean: true, heat: true, cool: true },
      { kind: 'knife', startsIn: ['drawer', 'countertop', 'diningtable'], clean: true },
      { kind: 'fork', startsIn: ['drawer', 'countertop', 'diningtable', 'sinkbasin'], clean: true },
      { kind: 'spoon', startsIn: ['drawer', 'countertop', 'diningtable', 'sinkbasin'], clean: true },
      { kind: 'pan', startsIn: ['stoveburner', 'cabinet', 'countertop'], clean: true, cool: true },
      { kind: 'pot', startsIn: ['stoveburner', 'cabinet', 'countertop'], clean: true, cool: true },
      { kind: 'saltshaker', startsIn: ['cabinet', 'countertop', 'shelf', 'drawer'] },
      { kind: 'winebottle', startsIn: ['cabinet', 'countertop', 'fridge', 'diningtable'], cool: true },
    ],
  },
  bathroom: {
    receptacles: [
      r('cabinet', true, 'in', 4),
      r('countertop', false, 'on', 1),
      r('drawer', true, 'in', 3),
      r('sinkbasin', false, 'in', 2, 'clean'),
      r('bathtubbasin', false, 'in', 1),
      r('toilet', false, 'on', 1),
      r('towelholder', false, 'on', 1),
      r('shelf', false, 'on', 2),
      r('garbagecan', false, 'in', 1),
    ],
    objects: [
      { kind: 'soapbar', startsIn: ['countertop', 'bathtubbasin', 'sinkbasin', 'toilet', 'cabinet'], clean: true },
      { kind: 'cloth', startsIn: ['countertop', 'cabinet', 'drawer', 'bathtubbasin', 'shelf'], clean: true },
      { kind: 'spraybottle', startsIn: ['cabinet', 'countertop', 'toilet', 'shelf'] },
      { kind: 'toiletpaper', startsIn: ['cabinet', 'countertop', 'toilet', 'shelf', 'drawer'] },
      { kind: 'candle', startsIn: ['countertop', 'cabinet', 'toilet', 'shelf'] },
      { kind: 'soapbottle', startsIn: ['countertop', 'cabinet', 'toilet', 'shelf'] },
      { kind: 'towel', startsIn: ['towelholder', 'cabinet', 'shelf'] },
      { kind: 'tissuebox', startsIn: ['countertop', 'shelf', 'toilet'] },
    ],
  },
  bedroom: {
    receptacles: [
      r('bed', false, 'on', 1),
      r('desk', false, 'on', 1),
      r('drawer', true, 'in', 5),
      r('dresser', false, 'on', 1),
      r('shelf', false, 'on', 4),
      r('sidetable', false, 'on', 2),
      r('garbagecan', false, 'in', 1),
      r('laundryhamper', false, 'in', 1),
      r('safe', true, 'in', 1),
    ],
    objects: [
      { kind: 'book', startsIn: ['bed', 'desk', 'shelf', 'sidetable', 'dresser'] },
      { kind: 'cellphone', startsIn: ['bed', 'desk', 'drawer', 'sidetable', 'dresser'] },
      { kind: 'pen', startsIn: ['desk', 'drawer', 'shelf', 'sidetable'] },
      { kind: 'pencil', startsIn: ['desk', 'drawer', 'shelf', 'sidetable'] },
      { kind: 'pillow', startsIn: ['bed'] },
      { kind: 'keychain', startsIn: ['desk', 'drawer', 'dresser', 'safe', 'sidetable'] },
      { kind: 'creditcard', startsIn: ['desk', 'drawer', 'dresser', 'safe', 'shelf'] },
      { kind: 'alarmclock', startsIn: ['desk', 'dresser', 'shelf', 'sidetable'] },
      { kind: 'cd', startsIn: ['desk', 'drawer', 'shelf', 'safe', 'garbagecan'] },
      { kind: 'laptop', startsIn: ['bed', 'desk', 'dresser'] },
    ],
  },
  livingroom: {
    receptacles: [
      r('sofa', false, 'on', 1),
      r('armchair', false, 'on', 2),
      r('coffeetable', false, 'on', 1),
      r('sidetable', false, 'on', 2),
      r('drawer', true, 'in', 4),
      r('shelf', false, 'on', 4),
      r('tvstand', false, 'on', 1),
      r('cabinet', true, 'in', 3),
      r('diningtable', false, 'on', 1),
      r('garbagecan', false, 'in', 1),
    ],
    objects: [
      { kind: 'remotecontrol', startsIn: ['sofa', 'armchair', 'coffeetable', 'sidetable', 'tvstand'] },
      { kind: 'newspaper', startsIn: ['sofa', 'armchair', 'coffeetable', 'diningtable', 'garbagecan'] },
      { kind: 'book', startsIn: ['shelf', 'coffeetable', 'sidetable', 'sofa'] },
      { kind: 'keychain', startsIn: ['drawer', 'coffeetable', 'sidetable', 'shelf'] },
      { kind: 'statue', startsIn: ['shelf', 'coffeetable', 'sidetable', 'tvstand'] },
      { kind: 'vase', startsIn: ['shelf', 'coffeetable', 'sidetable', 'diningtable', 'cabinet'] },
      { kind: 'box', startsIn: ['shelf', 'coffeetable', 'sofa', 'cabinet'] },
      { kind: 'creditcard', startsIn: ['drawer', 'coffeetable', 'sidetable', 'sofa'] },
      { kind: 'watch', startsIn: ['drawer', 'coffeetable', 'sidetable', 'shelf'] },
    ],
  },
};

export const ROOM_TYPES = Object.keys(ROOMS) as RoomType[];
